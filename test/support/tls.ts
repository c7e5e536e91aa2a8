/**
 * TLS for the tests: the material scripts/services-up.sh generates (FARAD_TEST_TLS_DIR, by default
 * .services/tls) and private `redis-server` processes over TLS or with a password, started by a
 * test on free loopback ports and stopped by it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './wait.js';

/** Paths of the PEM files in the TLS directory. */
export interface TlsMaterial {
  readonly dir: string;
  /** The test CA: it signed the brokers', the Redis servers' and the client certificate. */
  readonly ca: string;
  /** The servers' certificate and key (SAN IP:127.0.0.1, DNS:localhost). */
  readonly serverCert: string;
  readonly serverKey: string;
  /** A client certificate the test CA signed, and its key. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** An unrelated CA, and a client certificate it signed: what servers and clients must refuse. */
  readonly otherCa: string;
  readonly otherClientCert: string;
  readonly otherClientKey: string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The material services-up generated; fails naming what to run when it is missing. */
export function tlsMaterial(): TlsMaterial {
  const dir = process.env['FARAD_TEST_TLS_DIR'] || join(ROOT, '.services', 'tls');
  const material: TlsMaterial = {
    dir,
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
    otherCa: join(dir, 'other-ca.pem'),
    otherClientCert: join(dir, 'other-client.pem'),
    otherClientKey: join(dir, 'other-client-key.pem'),
  };
  const missing = Object.entries(material).filter(([name, path]) => name !== 'dir' && !existsSync(path));
  if (missing.length > 0) {
    throw new Error(`TLS material missing in ${dir} (${missing.map(([, p]) => p).join(', ')}); run scripts/services-up.sh (npm test does), which generates it, or set FARAD_TEST_TLS_DIR`);
  }
  return material;
}

export interface RedisServerOptions {
  /** TLS only (no plaintext port), with the test CA's server certificate. */
  readonly tls?: { readonly material: TlsMaterial; /** `tls-auth-clients`: whether clients must show a certificate. */ readonly clientCertificates: 'yes' | 'no' };
  /** `requirepass`. */
  readonly password?: string;
}

/** A private redis-server: its port, and how to stop it. */
export interface RedisServer {
  readonly port: number;
  /** `rediss://127.0.0.1:<port>` over TLS, else `redis://127.0.0.1:<port>` (no password in it). */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` on a free loopback port, nothing persisted, and waits until it accepts
 * connections. With `tls` the plaintext port is off (`port 0`): whatever talks to it talks TLS.
 */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'farad-test-redis-'));
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''];
  if (options.tls) {
    const { material, clientCertificates } = options.tls;
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', material.serverCert, '--tls-key-file', material.serverKey);
    args.push('--tls-ca-cert-file', material.ca, '--tls-auth-clients', clientCertificates);
  } else {
    args.push('--port', String(port));
  }
  if (options.password) args.push('--requirepass', options.password);
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) done();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => fail(new Error(`cannot run redis-server (apt-get install -y redis-server): ${err.message}`)));
    child.once('exit', (code) => fail(new Error(`redis-server exited (${String(code)}) while starting:\n${output}`)));
    function done(): void {
      clearTimeout(timer);
      resolve();
    }
    function fail(err: Error): void {
      clearTimeout(timer);
      stopChild(child);
      reject(err);
    }
  });
  return {
    port,
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    async stop() {
      stopChild(child);
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function stopChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}
