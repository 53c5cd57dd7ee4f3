import { describe, expect, it } from 'vitest';
import { type SampleFilter, decodeFilter, filterChips, isBooleanColumn, filterParam, isEmptyFilter, isolateLabel, labelShown, NO_FILTER, toggleHidden, withFlag, withRange } from './filter';

describe('the sample filter', () => {
  it('round-trips through its URL text, canonical and without empty parts', () => {
    const f = withFlag(withRange({ ...NO_FILTER, labels: ['cat'], query: ' fur ' }, 'b', [0.2, null]), 'correct', false);
    const text = filterParam(f)!;
    expect(JSON.parse(text)).toEqual({ labels: ['cat'], ranges: { b: [0.2, null] }, flags: { correct: false }, query: 'fur' });
    expect(decodeFilter(text)).toEqual({ ...f, query: 'fur' });
    expect(filterParam(NO_FILTER)).toBeUndefined();
    expect(isEmptyFilter(decodeFilter(null))).toBe(true);
  });

  it('drops what it cannot read instead of throwing', () => {
    expect(decodeFilter('{bad')).toEqual(NO_FILTER);
    expect(decodeFilter('[1]')).toEqual(NO_FILTER);
    const f = decodeFilter(JSON.stringify({ labels: 'x', ranges: { a: [2, 1], b: [0, 'x'], c: [null, 3] }, flags: { ok: 1, bad: false } }));
    expect(f).toEqual({ ...NO_FILTER, ranges: { c: [null, 3] }, flags: { bad: false } });
  });

  it('isolates a label on click and shows all again on a second click', () => {
    const one = isolateLabel(NO_FILTER, 'cat');
    expect(one.labels).toEqual(['cat']);
    expect(labelShown(one, 'dog')).toBe(false);
    expect(isolateLabel(one, 'cat').labels).toBeNull();
    const hidden = toggleHidden(one, 'cat');
    expect(hidden.labels).toBeNull();
    expect(hidden.hide).toEqual(['cat']);
    expect(toggleHidden(hidden, 'cat').hide).toEqual([]);
    expect(isolateLabel(hidden, 'cat')).toEqual({ ...NO_FILTER, labels: ['cat'], hide: [] });
  });

  it('lists each part as a removable chip', () => {
    const f: SampleFilter = { ...NO_FILTER, hide: ['dog'], ranges: { b: [null, 0.5] }, flags: { correct: false }, query: 'x' };
    const chips = filterChips(f, (v) => v.toFixed(1));
    expect(chips.map((c) => c.text)).toEqual(['hiding dog', 'b ≤ 0.5', 'misclassified only', '“x”']);
    const left = chips.reduce((g, c) => c.remove(g), f);
    expect(isEmptyFilter(left)).toBe(true);
  });

  it('reads True/False and 0/1 columns as yes/no columns', () => {
    expect(isBooleanColumn(['False', 'True'])).toBe(true);
    expect(isBooleanColumn(['0', '1'])).toBe(true);
    expect(isBooleanColumn(['0', '1', '2'])).toBe(false);
    expect(isBooleanColumn(['train', 'test'])).toBe(false);
    expect(isBooleanColumn(null)).toBe(false);
  });
});
