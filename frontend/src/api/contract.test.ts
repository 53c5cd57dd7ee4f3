/**
 * The committed `schema.d.ts` is what openapi-typescript makes of the committed `openapi.json`.
 * (`tests/test_openapi_contract.py` checks that openapi.json is the live server's schema.)
 * When this fails: `make api-types` at the repository root, or `npm run api:types`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ESM script without types
import { DTS_PATH, generate, JSON_PATH } from '../../scripts/api-types.mjs';
import { routeUrl } from './http';

describe('API contract', () => {
  it('schema.d.ts is generated from openapi.json', async () => {
    const expected: string = await generate(readFileSync(JSON_PATH, 'utf8'));
    expect(readFileSync(DTS_PATH, 'utf8') === expected, 'src/api/schema.d.ts is stale: run `make api-types`').toBe(true);
  });

  it('fills and encodes path parameters and drops undefined query values', () => {
    const url = new URL(routeUrl('runs/{run}/layers/{layer}/gallery', { run: 'a b', layer: 'blocks.0/x' }, { n: 8, basis: undefined }));
    expect(url.pathname).toBe('/api/runs/a%20b/layers/blocks.0%2Fx/gallery');
    expect(url.search).toBe('?n=8');
  });
});
