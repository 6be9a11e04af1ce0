// Data protection on prompts: detect PII and secrets in the text fields of a request and pass,
// redact or block it according to the policy's `dataProtection` section.
import type { ProviderType } from '../policy/compiled.js';
import type { DataProtection, ProtectionAction } from './schema.js';
import { DETECTORS, detect, type Detector, type Finding } from './detectors.js';
import { ENTITY_TYPES, isSecretEntity, placeholder, type EntityType } from './entities.js';
import { mapRequestText, mapResponseText, type TextVisitor } from './fields.js';

export {
  ENTITY_TYPES,
  PII_ENTITIES,
  SECRET_ENTITIES,
  isEntityType,
  type EntityType,
} from './entities.js';
export type { DataProtection, ProtectionAction } from './schema.js';
export { mapRequestText, mapResponseText } from './fields.js';

export type ProtectionVerdict =
  | { verdict: 'pass'; counts: Record<string, number> }
  | { verdict: 'redacted'; body: unknown; counts: Record<string, number> }
  | { verdict: 'blocked'; entity: string; counts: Record<string, number> };

/** The enabled detectors and what to do on a match, resolved once per settings object. */
interface Plan {
  detectors: readonly Detector[];
  actions: ReadonlyMap<EntityType, Exclude<ProtectionAction, 'off'>>;
}

const NO_COUNTS: Record<string, number> = Object.freeze({}) as Record<string, number>;
const PASS: ProtectionVerdict = Object.freeze({ verdict: 'pass', counts: NO_COUNTS });
const plans = new WeakMap<DataProtection, Plan | null>();

/** Per entity: its own override, else the pii/secrets action, else off. */
export function actionFor(settings: DataProtection, entity: EntityType): ProtectionAction {
  return (
    settings.entities?.[entity] ??
    (isSecretEntity(entity) ? settings.secrets : settings.pii) ??
    'off'
  );
}

function planFor(settings: DataProtection | undefined): Plan | null {
  if (settings === undefined) return null;
  let plan = plans.get(settings);
  if (plan !== undefined) return plan;
  const actions = new Map<EntityType, 'block' | 'redact'>();
  for (const entity of ENTITY_TYPES) {
    const action = actionFor(settings, entity);
    if (action !== 'off') actions.set(entity, action);
  }
  plan =
    actions.size === 0
      ? null
      : { detectors: DETECTORS.filter((d) => actions.has(d.entity)), actions };
  plans.set(settings, plan);
  return plan;
}

/**
 * Scans the prompt text of an OpenAI (chat, completions, embeddings, responses) or Anthropic
 * (messages, system) request body. Other fields are never read. With no settings, or all
 * actions off, returns a shared pass verdict without touching the body.
 */
export function protectRequest(
  providerType: ProviderType,
  body: unknown,
  settings: DataProtection | undefined,
): ProtectionVerdict {
  const plan = planFor(settings);
  if (plan === null) return PASS;
  return apply(plan, (visit) => mapRequestText(providerType, body, visit));
}

/** The same over a non-streamed response body, only when the policy sets `scanResponses`. */
export function protectResponse(
  providerType: ProviderType,
  body: unknown,
  settings: DataProtection | undefined,
): ProtectionVerdict {
  if (settings?.scanResponses !== true) return PASS;
  const plan = planFor(settings);
  if (plan === null) return PASS;
  return apply(plan, (visit) => mapResponseText(providerType, body, visit));
}

function apply(plan: Plan, walk: (visit: TextVisitor) => unknown): ProtectionVerdict {
  let counts: Record<string, number> | undefined;
  let blocked: EntityType | undefined;
  let redacted = false;
  const visit: TextVisitor = (text) => {
    const findings = detect(text, plan.detectors);
    if (findings.length === 0) return text;
    counts ??= {};
    for (const f of findings) {
      counts[f.entity] = (counts[f.entity] ?? 0) + 1;
      if (blocked === undefined && plan.actions.get(f.entity) === 'block') blocked = f.entity;
    }
    if (blocked !== undefined) return text;
    redacted = true;
    return replaceFindings(text, findings);
  };
  const body = walk(visit);
  if (blocked !== undefined) return { verdict: 'blocked', entity: blocked, counts: counts ?? {} };
  if (redacted) return { verdict: 'redacted', body, counts: counts ?? {} };
  return counts === undefined ? PASS : { verdict: 'pass', counts };
}

/** Replaces each (sorted, non-overlapping) finding with its typed placeholder. */
export function replaceFindings(text: string, findings: readonly Finding[]): string {
  let out = '';
  let at = 0;
  for (const f of findings) {
    out += text.slice(at, f.start) + placeholder(f.entity);
    at = f.end;
  }
  return out + text.slice(at);
}

const REDACT_ALL: Plan = {
  detectors: DETECTORS,
  actions: new Map(ENTITY_TYPES.map((e) => [e, 'redact' as const])),
};

/**
 * Every detector in redact mode, whatever the policy says: for text that leaves the process
 * another way (captured content in telemetry), where nothing detectable may pass.
 */
export function redactAll(text: string): string {
  const findings = detect(text, REDACT_ALL.detectors);
  return findings.length === 0 ? text : replaceFindings(text, findings);
}
