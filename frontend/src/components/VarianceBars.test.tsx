// @vitest-environment happy-dom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VarianceBars } from './VarianceBars';

afterEach(() => cleanup());

describe('VarianceBars', () => {
  it('are buttons reachable by keyboard: one tab stop, arrows move, Enter picks', () => {
    const onPick = vi.fn();
    render(<VarianceBars ratios={[0.5, 0.3, 0.2]} active={1} onPick={onPick} />);
    const bars = screen.getAllByRole('button');
    expect(bars.map((b) => b.getAttribute('tabindex'))).toEqual(['-1', '0', '-1']);
    expect(bars[0].getAttribute('aria-label')).toBe('Probe PC 1: 50.0% of variance');
    bars[1].focus();
    fireEvent.keyDown(bars[1], { key: 'ArrowRight' });
    expect(document.activeElement).toBe(screen.getAllByRole('button')[2]);
    fireEvent.keyDown(document.activeElement!, { key: 'Enter' });
    expect(onPick).toHaveBeenLastCalledWith(2);
    fireEvent.keyDown(document.activeElement!, { key: 'Home' });
    fireEvent.keyDown(document.activeElement!, { key: ' ' });
    expect(onPick).toHaveBeenLastCalledWith(0);
  });

  it('without onPick are a picture, not buttons', () => {
    render(<VarianceBars ratios={[0.5, 0.3]} />);
    expect(screen.queryAllByRole('button')).toHaveLength(0);
  });
});
