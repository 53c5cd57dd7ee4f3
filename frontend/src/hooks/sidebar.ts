/** Whether the sidebar (runs and layers) is shown; hiding it gives a narrow window to the view. */
import { useCallback, useState } from 'react';

const SIDEBAR_KEY = 'ee-sidebar';

/** Shown unless the user hid it (the choice is kept across visits). */
export function useSidebarOpen(): [boolean, () => void] {
  const [open, setOpen] = useState(() => window.localStorage?.getItem(SIDEBAR_KEY) !== 'hidden');
  const toggle = useCallback(() => {
    setOpen((was) => {
      window.localStorage?.setItem(SIDEBAR_KEY, was ? 'hidden' : 'shown');
      return !was;
    });
  }, []);
  return [open, toggle];
}
