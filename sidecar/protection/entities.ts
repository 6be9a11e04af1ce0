// The entity types data protection knows, each with a stable name used in policies, spans and metrics.

export const PII_ENTITIES = [
  'email',
  'phone',
  'credit_card',
  'us_ssn',
  'iban',
  'ip_address',
] as const;

export const SECRET_ENTITIES = [
  'openai_key',
  'anthropic_key',
  'aws_access_key',
  'private_key',
  'jwt',
  'high_entropy_token',
] as const;

export type PiiEntity = (typeof PII_ENTITIES)[number];
export type SecretEntity = (typeof SECRET_ENTITIES)[number];
export type EntityType = PiiEntity | SecretEntity;

export const ENTITY_TYPES: readonly EntityType[] = [...SECRET_ENTITIES, ...PII_ENTITIES];

const secretSet: ReadonlySet<string> = new Set(SECRET_ENTITIES);
const entitySet: ReadonlySet<string> = new Set(ENTITY_TYPES);

export function isSecretEntity(entity: EntityType): entity is SecretEntity {
  return secretSet.has(entity);
}

export function isEntityType(value: string): value is EntityType {
  return entitySet.has(value);
}

/** The placeholder a redacted value becomes in the forwarded body. */
export function placeholder(entity: EntityType): string {
  return `[REDACTED:${entity}]`;
}
