export { startDedicatedServer, type DedicatedServer } from '../../src/testing/index.js';
