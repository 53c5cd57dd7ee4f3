import { describe, expect, it } from 'vitest';
import { kindName, targetLabel, targetPatch, targetSearch } from './insights';

const finding = {
  kind: 'input_statistic',
  layer: 'block1',
  component: 0,
  column: 'brightness',
  strength: 0.8,
  sentence: 'block1 PC1 (55% of variance) follows brightness, r = +0.92',
  statistic: 0.92,
  other: null,
  target: { run: 'cnn', tab: 'probe', layer: 'block1', pc: 0, color: 'brightness' },
};

describe('insight targets', () => {
  it('patch only the fields the target names', () => {
    expect(targetPatch(finding.target)).toEqual({ run: 'cnn', tab: 'probe', layer: 'block1', pc: 0, color: 'brightness' });
    expect(targetPatch({ tab: 'datasets', dsa: 'a', dsb: 'b', dsl: 'fc', dspc: 2 })).toEqual({
      tab: 'datasets',
      dsA: 'a',
      dsB: 'b',
      dsLayer: 'fc',
      dsPc: 2,
    });
  });

  it('read as links and labels', () => {
    expect(targetSearch(finding.target)).toBe('?run=cnn&tab=probe&layer=block1&pc=0&color=brightness');
    expect(targetLabel(finding)).toBe('Probe block1 PC 1');
    expect(kindName('dataset_shift')).toBe('Data-set shift');
    expect(kindName('new_kind')).toBe('new kind');
  });
});
