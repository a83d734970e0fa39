// A signature drawn on the screen: a canvas with pointer events (finger, pen or mouse), kept as strokes so a
// resize or a reload redraws it; exported as a PNG Blob. An empty pad refuses to give one.
import { h } from "./dom.js";

/** Whether strokes hold enough ink to be a signature (at least one stroke with some length). */
export function hasInk(strokes) {
  return strokes.some((stroke) => stroke.length > 1 && stroke.some(([x, y]) => x !== stroke[0][0] || y !== stroke[0][1]));
}

export class EmptySignature extends Error {
  constructor() {
    super("empty signature");
    this.name = "EmptySignature";
  }
}

/**
 * A signature pad. strokes: [[x, y], ...] per stroke in canvas pixels (kept in a draft, so it survives a reload).
 * @param {{label: string, strokes?: number[][][], onChange?: (strokes) => void}} opts
 */
export function signaturePad({ label, strokes = [], onChange = () => {} }) {
  const canvas = h("canvas", { class: "signature", width: 640, height: 260, role: "img", "aria-label": label,
    "data-signature": "" });
  const ctx = canvas.getContext("2d");
  let current = null;
  const all = strokes.map((s) => s.map(([x, y]) => [x, y]));

  function redraw() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const stroke of all) {
      ctx.beginPath();
      stroke.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (stroke.length === 1) ctx.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
      ctx.stroke();
    }
  }
  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [Math.round(((event.clientX - box.left) / box.width) * canvas.width),
      Math.round(((event.clientY - box.top) / box.height) * canvas.height)];
  }
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture?.(event.pointerId);
    current = [point(event)];
    all.push(current);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!current) return;
    event.preventDefault();
    current.push(point(event));
    redraw();
  });
  const end = () => {
    if (!current) return;
    current = null;
    redraw();
    onChange(all);
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("pointerleave", end);
  redraw();

  return {
    el: canvas,
    isEmpty: () => !hasInk(all),
    clear() {
      all.length = 0;
      redraw();
      onChange(all);
    },
    /** The drawing as a PNG Blob; EmptySignature when nothing was drawn. */
    toBlob() {
      if (!hasInk(all)) return Promise.reject(new EmptySignature());
      return new Promise((resolve, reject) => canvas.toBlob(
        (blob) => (blob ? resolve(blob) : reject(new Error("the signature could not be encoded"))), "image/png"));
    },
  };
}
