export { buildHttpServer, type HttpDeps } from './server.js';
