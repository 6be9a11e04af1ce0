// Where a provider's key comes from, as the CompiledPolicy states it. Values never appear here.
import { Type, type Static } from '@sinclair/typebox';

export const FileCredentials = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      description: 'A mounted secret file; re-read when it changes.',
    }),
  },
  { additionalProperties: false },
);

export const AwsSecretsManagerCredentials = Type.Object(
  {
    secretId: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'Secret name or full ARN.',
    }),
    region: Type.Optional(Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-\\d$' })),
    jsonKey: Type.Optional(Type.String({ minLength: 1 })),
    versionStage: Type.Optional(Type.String({ minLength: 1, default: 'AWSCURRENT' })),
    refreshIntervalSeconds: Type.Optional(Type.Integer({ minimum: 10, default: 300 })),
    fetchFrom: Type.Optional(
      Type.Union([Type.Literal('operator'), Type.Literal('sidecar')], { default: 'sidecar' }),
    ),
  },
  { additionalProperties: false },
);

export const Credentials = Type.Union([
  Type.Object({ file: FileCredentials }, { additionalProperties: false }),
  Type.Object(
    { none: Type.Object({}, { additionalProperties: false }) },
    { additionalProperties: false },
  ),
  Type.Object({ awsSecretsManager: AwsSecretsManagerCredentials }, { additionalProperties: false }),
]);

export type FileCredentials = Static<typeof FileCredentials>;
export type AwsSecretsManagerCredentials = Static<typeof AwsSecretsManagerCredentials>;
export type Credentials = Static<typeof Credentials>;
