import { preloadFor } from './preload';
import './styles/index.css';

// the theme before the first paint: the stored choice, else the system's
const stored = window.localStorage?.getItem('ee-theme');
document.documentElement.dataset.theme =
  stored === 'light' || stored === 'dark' ? stored : window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';

// this small entry asks for the page's biggest answer first; the app (React and every view, most
// of the bundle) is fetched and parsed while that answer is on its way
preloadFor(window.location.search);
const root = document.getElementById('root')!;
import('./mount').then(
  ({ mount }) => mount(root),
  (err: unknown) => {
    root.textContent = `The Embedding Explorer could not load its code (${err instanceof Error ? err.message : String(err)}); reload the page.`;
  },
);
