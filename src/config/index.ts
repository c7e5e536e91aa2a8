export { loadConfig, envNameOf, environmentVariables, type Config, type ConfigInput, type LoadOptions } from './config.js';
