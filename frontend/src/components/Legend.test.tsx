// @vitest-environment happy-dom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { CategoricalLegend } from './Legend';

afterEach(() => cleanup());

describe('CategoricalLegend', () => {
  it('says when categories share colours', () => {
    const items = Array.from({ length: 45 }, (_, i) => ({ label: `c${i}`, color: `#0000${(i % 20).toString().padStart(2, '0')}` }));
    render(<CategoricalLegend items={items} />);
    expect(screen.getByTestId('legend-shared-colours').textContent).toContain('45 categories share 20 colours');
    cleanup();
    render(<CategoricalLegend items={items.slice(0, 5)} />);
    expect(screen.queryByTestId('legend-shared-colours')).toBeNull();
  });
});
