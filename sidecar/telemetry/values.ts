// Client-sent strings that telemetry records (model names, error classes) are kept only when they
// have the shape they claim; anything else (a prompt pasted as a model, a provider message passed
// as an error type) becomes `_OTHER`, the conventions' value for "something else".

export const OTHER = '_OTHER';

const MODEL_PATTERN = /^[A-Za-z0-9._:/@+-]{1,128}$/;
const TOKEN_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** A model name, or `_OTHER` if the value does not look like one. */
export function safeModel(model: string | undefined): string | undefined {
  if (model === undefined) return undefined;
  return MODEL_PATTERN.test(model) ? model : OTHER;
}

/** A short identifier-like value (operation, error type, code), or `_OTHER`. */
export function safeToken(value: string): string {
  return TOKEN_PATTERN.test(value) ? value : OTHER;
}
