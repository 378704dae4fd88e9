// HTTP/2 rapid reset (CVE-2023-44487) guard shared by the outbound and inbound h2 servers.
import * as http2 from 'node:http2';

/** Once this many streams were reset by the client before an answer, and they are at least half of all streams, the session is closed. */
export const PREMATURE_RESETS = 100;

/**
 * Closes an h2 session whose client keeps opening streams and resetting them before they are answered.
 * `onClose` runs once when the guard closes a session (for metrics or logs).
 */
export function guardRapidReset(session: http2.ServerHttp2Session, onClose?: () => void): void {
  let opened = 0;
  let premature = 0;
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    opened++;
    // 'close' rather than 'aborted': the latter is not emitted once the request body was consumed.
    stream.once('close', () => {
      if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR || stream.headersSent) return;
      premature++;
      if (premature >= PREMATURE_RESETS && premature * 2 >= opened && !session.destroyed) {
        session.destroy(undefined, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        onClose?.();
      }
    });
  });
}

/**
 * Whether a response closed before it was complete (the client reset the stream or went away), so the upstream
 * request behind it must be cancelled. node's HTTP/2 compat response reports writableFinished even after a reset.
 */
export function responseCut(res: { writableEnded: boolean; writableFinished: boolean; stream?: unknown }): boolean {
  return (res as http2.Http2ServerResponse).stream !== undefined ? !res.writableEnded : !res.writableFinished;
}
