import { describe, expect, it } from '@jest/globals';
import { KubeApiError } from './client.js';
import { diffSnapshots, nextStep } from './informer.js';
import { LlmPolicies, Pods, resourcePath } from './resources.js';
import type { KubeObject } from './types.js';

const obj = (name: string, rv: string): KubeObject => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});

describe('diffSnapshots', () => {
  it('reports additions, updates and deletions missed while the watch was down', () => {
    const before = new Map([
      ['ns/a', obj('a', '1')],
      ['ns/b', obj('b', '1')],
    ]);
    const after = new Map([
      ['ns/a', obj('a', '2')],
      ['ns/c', obj('c', '3')],
    ]);
    const changes = diffSnapshots(before, after).map((c) => `${c.type}:${c.object.metadata?.name}`);
    expect(changes.sort()).toEqual(['added:c', 'deleted:b', 'updated:a']);
  });

  it('reports nothing for an unchanged object', () => {
    const same = new Map([['ns/a', obj('a', '1')]]);
    expect(diffSnapshots(same, new Map(same))).toEqual([]);
  });
});

describe('nextStep', () => {
  it('relists on 410 Gone and resumes after a clean close or a watchdog restart', () => {
    expect(nextStep({ error: new KubeApiError(410, 'Expired', 'gone') }, true)).toBe('relist');
    expect(nextStep('closed', true)).toBe('resume');
    expect(nextStep('stale', true)).toBe('resume');
    expect(nextStep('relist-due', true)).toBe('relist');
  });

  it('backs off on other errors, and lists after backing off when it holds no list', () => {
    expect(nextStep({ error: new Error('ECONNREFUSED') }, true)).toBe('backoff-resume');
    expect(nextStep({ error: new KubeApiError(500, 'x', 'y') }, false)).toBe('backoff-relist');
  });
});

describe('resourcePath', () => {
  it('builds core and group paths, with subresources', () => {
    expect(resourcePath(Pods, { namespace: 'ns', name: 'p' })).toBe('/api/v1/namespaces/ns/pods/p');
    expect(resourcePath(LlmPolicies, { namespace: 'ns', name: 'x', subresource: 'status' })).toBe(
      '/apis/llmproxy.io/v1alpha1/namespaces/ns/llmpolicies/x/status',
    );
    expect(resourcePath(LlmPolicies)).toBe('/apis/llmproxy.io/v1alpha1/llmpolicies');
  });

  it('refuses names that would change the path', () => {
    expect(() => resourcePath(Pods, { namespace: 'ns', name: '../secrets' })).toThrow();
    expect(() => resourcePath(Pods, { namespace: 'a/b' })).toThrow();
  });
});
