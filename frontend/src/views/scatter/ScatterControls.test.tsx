// @vitest-environment happy-dom
import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { ResolvedBasis } from '../../hooks';
import { renderView, runInfo } from '../../test/app';
import { ScatterControls, type ScatterControlsProps } from './ScatterControls';

const resolved: ResolvedBasis = { choice: 'pca', key: 'pca', groupA: null, groupB: null, direction: null, error: null, loading: false, retry: () => {} };

function setup(props: Partial<ScatterControlsProps> = {}) {
  const run = runInfo('r1');
  const onChange = vi.fn();
  const onMode = vi.fn();
  const harness = renderView(
    <ScatterControls
      basis="pca"
      resolved={resolved}
      ratios={[0.5, 0.25, 0.125]}
      x={0}
      y={1}
      columns={run.columns}
      column={run.columns[0]}
      mode="panZoom"
      onChange={onChange}
      onMode={onMode}
      {...props}
    />,
  );
  return { ...harness, onChange, onMode };
}

describe('ScatterControls', () => {
  it('offers every component for both axes, with its share of variance', () => {
    setup();
    const options = Array.from((screen.getByTestId('x-axis-select') as HTMLSelectElement).options).map((o) => o.textContent);
    expect(options).toEqual(['PC 1 · 50.0%', 'PC 2 · 25.0%', 'PC 3 · 12.5%']);
    expect((screen.getByTestId('y-axis-select') as HTMLSelectElement).value).toBe('1');
  });

  it('names ICA axes without a variance share', () => {
    setup({ basis: 'ica' });
    expect(Array.from((screen.getByTestId('x-axis-select') as HTMLSelectElement).options).map((o) => o.textContent)).toEqual(['IC 1', 'IC 2', 'IC 3']);
  });

  it('changes and swaps the axes', () => {
    const { onChange } = setup({ x: 2, y: 0 });
    fireEvent.change(screen.getByTestId('x-axis-select'), { target: { value: '1' } });
    expect(onChange).toHaveBeenLastCalledWith({ x: 1 });
    fireEvent.click(screen.getByRole('button', { name: 'Swap axes' }));
    expect(onChange).toHaveBeenLastCalledWith({ x: 0, y: 2 });
  });

  it('colours by a column; the label column is the default (null)', () => {
    const { onChange } = setup();
    fireEvent.change(screen.getByTestId('color-select'), { target: { value: 'brightness' } });
    expect(onChange).toHaveBeenLastCalledWith({ color: 'brightness' });
    fireEvent.change(screen.getByTestId('color-select'), { target: { value: 'label' } });
    expect(onChange).toHaveBeenLastCalledWith({ color: null });
  });

  it('switches the mouse mode and the basis (PCA | ICA only)', () => {
    const { onMode, update } = setup();
    fireEvent.click(screen.getByTestId('mode-lasso'));
    expect(onMode).toHaveBeenCalledWith('lasso');
    expect(screen.queryByTestId('basis-dir')).toBeNull();
    fireEvent.click(screen.getByTestId('basis-ica'));
    expect(update).toHaveBeenCalledWith({ basis: 'ica', pc: 0, q: 0.5, x: 0, y: 1 });
  });
});
