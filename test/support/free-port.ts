export { freePort } from '../../src/testing/embedded-test-server.js';
