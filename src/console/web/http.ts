/**
 * Same-origin JSON requests. Relative URLs with credentials 'same-origin': the Basic credentials
 * the browser asked for once are sent with every request by the browser itself.
 */
import type { ErrorBody } from './api.js';

export type Answer<T> =
  | { readonly ok: true; readonly status: number; readonly body: T }
  | { readonly ok: false; readonly status: number; readonly error: ErrorBody };

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<Answer<T>> {
  return request<T>(url, { method: 'GET', headers: { accept: 'application/json' }, ...(signal ? { signal } : {}) });
}

export async function postJson<T>(url: string, body: unknown): Promise<Answer<T>> {
  return request<T>(url, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function request<T>(url: string, init: RequestInit): Promise<Answer<T>> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, credentials: 'same-origin', cache: 'no-store' });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    // status 0: nothing answered (server down, network gone).
    return { ok: false, status: 0, error: { error: 'unreachable', message: `no answer from the server (${errorText(err)})` } };
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (res.ok) return { ok: true, status: res.status, body: parsed as T };
  return { ok: false, status: res.status, error: asError(parsed, `HTTP ${res.status} ${res.statusText}`.trim()) };
}

function asError(body: unknown, fallback: string): ErrorBody {
  if (typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string') return body as ErrorBody;
  return { message: fallback };
}

export function errorCode(error: ErrorBody): string | undefined {
  return error.error ?? error.code;
}

/** "code: message" for one line of UI. */
export function describeError(error: ErrorBody): string {
  const code = errorCode(error);
  return code === undefined ? error.message : `${code}: ${error.message}`;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
