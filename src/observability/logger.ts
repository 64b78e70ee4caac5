// PLACEHOLDER: the config/logger work replaces this file (pino with a redaction list).
import pino from 'pino';
export type Logger = pino.Logger;
