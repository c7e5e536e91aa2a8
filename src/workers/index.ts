/**
 * Every core: an instance runs several worker processes (node:cluster), each a full member of
 * the app's group holding its own partitions. They share the instance's id (standbys never land
 * on a worker of the owner's instance), its HTTP port (the primary hands connections out) and its
 * reads, health and /metrics (workers ask each other through the primary).
 */
export { workerOfUrl, workerUrl } from './address.js';
export { availableCores, cgroupQuota, coresFrom, type CpuQuota } from './cores.js';
export { HTTP_KIND, WorkerLink, workerLinkFromEnvironment, type Channel, type Handler } from './link.js';
export type { Target, ToPrimary, ToWorker, WorkerAnswer } from './messages.js';
export { Router } from './router.js';
export { superviseWorkers, type SupervisorOptions } from './supervisor.js';
