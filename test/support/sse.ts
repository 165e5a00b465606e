/** Reading a Server-Sent Events response body frame by frame (fetch). */

/** Calls `onFrame(event, data)` for every frame of `res` until the stream ends or is aborted. */
export async function readSse(res: Response, onFrame: (event: string, data: string) => void): Promise<void> {
  let buf = '';
  const dec = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      if (data !== undefined && event !== undefined) onFrame(event, data);
    }
  }
}
