/** The light or dark theme, and CSS variables that follow it. */
import { useCallback, useEffect, useState } from 'react';

export type Theme = 'light' | 'dark';
const THEME_KEY = 'ee-theme';

function systemTheme(): Theme {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Light or dark: the stored choice, else the system's; the toggle stores a choice. */
export function useTheme(): [Theme, () => void] {
  const [choice, setChoice] = useState<Theme | null>(() => {
    const stored = window.localStorage?.getItem(THEME_KEY);
    return stored === 'light' || stored === 'dark' ? stored : null;
  });
  const [system, setSystem] = useState<Theme>(systemTheme);
  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return;
    const on = () => setSystem(mq.matches ? 'dark' : 'light');
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  const theme = choice ?? system;
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  const toggle = useCallback(() => {
    const next: Theme = theme === 'dark' ? 'light' : 'dark';
    window.localStorage?.setItem(THEME_KEY, next);
    setChoice(next);
  }, [theme]);
  return [theme, toggle];
}

/** The value of a CSS variable on <html>, re-read when the theme changes. */
export function useCssVar(name: string, theme: Theme): string {
  const [value, setValue] = useState('');
  useEffect(() => {
    setValue(getComputedStyle(document.documentElement).getPropertyValue(name).trim());
  }, [name, theme]);
  return value;
}
