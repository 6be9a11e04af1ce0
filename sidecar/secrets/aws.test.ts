import { describe, expect, it } from '@jest/globals';
import { toReadError } from './aws.js';
import { regionFromArn } from './arn.js';

describe('toReadError', () => {
  it.each([
    [{ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } }, 'not_found'],
    [{ name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }, 'access_denied'],
    [{ name: 'SomethingNew', $metadata: { httpStatusCode: 403 } }, 'access_denied'],
    [{ name: 'DecryptionFailure' }, 'decryption_failed'],
    [{ name: 'InvalidRequestException' }, 'invalid_request'],
    [{ name: 'CredentialsProviderError' }, 'no_aws_credentials'],
    [{ name: 'InternalServiceError', $fault: 'server' }, 'unreachable'],
    [{ name: 'Error', $metadata: { httpStatusCode: 503 } }, 'unreachable'],
    [{ name: 'Error', code: 'ECONNREFUSED', $metadata: {} }, 'unreachable'],
    [{ name: 'TimeoutError' }, 'unreachable'],
    [
      {
        name: 'Error',
        message: 'AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:1',
      },
      'unreachable',
    ],
    [{ name: 'Weird', $metadata: { httpStatusCode: 400 } }, 'aws_error'],
  ])('classifies %j as %s', (error, reason) => {
    expect(toReadError(error).reason).toBe(reason);
  });

  it('carries the error name but never the AWS message', () => {
    const error = Object.assign(new Error('value was: hunter-two'), {
      name: 'ResourceNotFoundException',
    });
    const mapped = toReadError(error);
    expect(mapped.awsError).toBe('ResourceNotFoundException');
    expect(mapped.message).not.toContain('hunter');
  });

  it('drops an error name that is not a plain identifier', () => {
    expect(toReadError({ name: 'x y <script>' }).awsError).toBeUndefined();
  });

  it('names the HTTP status when the SDK could not parse the error response', () => {
    const mapped = toReadError({ name: 'SyntaxError', $metadata: { httpStatusCode: 403 } });
    expect(mapped).toMatchObject({ reason: 'access_denied', awsError: 'HTTP403' });
  });
});

describe('regionFromArn', () => {
  it('reads the region of a secret ARN', () => {
    expect(
      regionFromArn('arn:aws:secretsmanager:eu-west-1:123456789012:secret:llm/openai-AbC123'),
    ).toBe('eu-west-1');
    expect(
      regionFromArn('arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x-AbC123'),
    ).toBe('us-gov-west-1');
  });

  it('leaves a secret name to the default region', () => {
    expect(regionFromArn('llm/openai')).toBeUndefined();
    expect(regionFromArn('arn:aws:s3:::bucket')).toBeUndefined();
  });
});
