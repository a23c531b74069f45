/** A configuration problem: the message names the variable; the process refuses to start. */
export class ConfigError extends Error {}
