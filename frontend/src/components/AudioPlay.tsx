import { useRef, useState, type MouseEvent } from 'react';

/**
 * A small play / pause button for an audio sample's clip (an `<audio>` element, fetched only
 * when played). It sits over the spectrogram thumbnail; its clicks do not open the sample.
 */
export function AudioPlay({ src, label }: { src: string; label: string }) {
  const ref = useRef<HTMLAudioElement>(null);
  const [playing, setPlaying] = useState(false);
  const toggle = (e: MouseEvent) => {
    e.stopPropagation();
    const audio = ref.current;
    if (!audio) return;
    if (audio.paused) audio.play().catch(() => setPlaying(false));
    else audio.pause();
  };
  return (
    <>
      <button type="button" className="audio-play" onClick={toggle} aria-label={`${playing ? 'Pause' : 'Play'} ${label}`} title={playing ? 'Pause' : 'Play'} data-testid="audio-play">
        {playing ? '❚❚' : '▶'}
      </button>
      <audio ref={ref} src={src} preload="none" onPlay={() => setPlaying(true)} onPause={() => setPlaying(false)} onEnded={() => setPlaying(false)} data-testid="thumb-audio" />
    </>
  );
}
