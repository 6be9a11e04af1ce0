import { describe, expect, it } from '@jest/globals';
import { podKeys, selectorAnchors, selectorMatches } from './selector.js';
import { durationSeconds } from './duration.js';

describe('selectorMatches', () => {
  it('treats NotIn as matching a pod without the label, as Kubernetes does', () => {
    expect(
      selectorMatches(
        { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
        {},
      ),
    ).toBe(true);
  });

  it('does not see inherited object keys as labels', () => {
    expect(
      selectorMatches({ matchExpressions: [{ key: 'toString', operator: 'Exists' }] }, {}),
    ).toBe(false);
  });
});

describe('selectorAnchors', () => {
  it('anchors on a label every matching pod must carry', () => {
    const anchors = selectorAnchors({ matchLabels: { b: '2', a: '1' } });
    expect(anchors).toHaveLength(1);
    expect(podKeys({ a: '1' })).toEqual(expect.arrayContaining(anchors!));
  });

  it('anchors on the narrowest In, then on Exists', () => {
    expect(
      selectorAnchors({
        matchExpressions: [
          { key: 'x', operator: 'In', values: ['1', '2'] },
          { key: 'y', operator: 'In', values: ['3'] },
        ],
      }),
    ).toHaveLength(1);
    expect(selectorAnchors({ matchExpressions: [{ key: 'x', operator: 'Exists' }] })).toHaveLength(
      1,
    );
  });

  it('has no anchor when every pod may match', () => {
    expect(selectorAnchors({})).toBeUndefined();
    expect(
      selectorAnchors({ matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] }),
    ).toBeUndefined();
  });
});

describe('durationSeconds', () => {
  it('reads Go-style durations and rounds up to whole seconds', () => {
    expect(durationSeconds('5m')).toBe(300);
    expect(durationSeconds('1h30m')).toBe(5400);
    expect(durationSeconds('1.5s')).toBe(2);
    expect(durationSeconds('1500ms')).toBe(2);
  });

  it('refuses text that is not a duration', () => {
    expect(() => durationSeconds('5 minutes')).toThrow(RangeError);
    expect(() => durationSeconds('')).toThrow(RangeError);
    expect(() => durationSeconds('5mx')).toThrow(RangeError);
  });
});
