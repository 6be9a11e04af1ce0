// What the pipeline needs to know about a provider's wire format, and nothing else.
import type { ProviderType } from '../policy/compiled.js';

/** gen_ai.operation.name values (OpenTelemetry GenAI conventions). */
export type Operation = 'chat' | 'text_completion' | 'embeddings';

export interface Endpoint {
  operation: Operation;
  /** Azure deployments name the model in the path, not the body. */
  modelFromPath?: string;
}

export interface ProviderAdapter {
  readonly type: ProviderType;
  /** The endpoint a path (after `/{provider}`) names, or undefined: unknown endpoints are refused. */
  endpoint(path: string): Endpoint | undefined;
  /** The model a request asks for, unvalidated. */
  requestedModel(body: Record<string, unknown>, endpoint: Endpoint): unknown;
  /** Lowers every output-token field above `cap` to `cap`, and sets one when the client sent none. */
  capOutputTokens(body: Record<string, unknown>, endpoint: Endpoint, cap: number): void;
  /** The output-token bound a request states, after capping (for limit reservations). */
  statedOutputTokens(body: Record<string, unknown>): number | undefined;
  isStreaming(body: Record<string, unknown>): boolean;
  /** Headers that carry the key, the provider's way. */
  credentialHeaders(key: string): Record<string, string>;
  /** Headers the provider requires that a client may omit. */
  readonly defaultHeaders: Readonly<Record<string, string>>;
}
