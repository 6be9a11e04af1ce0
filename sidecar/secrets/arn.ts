// Secret ARNs carry their region; a bare name takes the SDK's default region.

/** `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>` → `<region>`. */
export function regionFromArn(secretId: string): string | undefined {
  const parts = secretId.split(':');
  if (parts.length < 7 || parts[0] !== 'arn' || parts[2] !== 'secretsmanager') return undefined;
  return parts[3] || undefined;
}
