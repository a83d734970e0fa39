// A photo from the camera: <input type=file accept=image/* capture=environment>, downscaled through a canvas to
// a JPEG whose longer side is at most 1600 px (an upload stays far under the server's 10 MiB), kept on the device
// as a blob (the core's addBlob, named by its sha256) until it is uploaded. The preview is a blob: URL.
import { h } from "./dom.js";
import { addBlob, getBlob } from "../core/queue.js";

export const MAX_SIDE = 1600;
export const JPEG_QUALITY = 0.82;

/** Width and height scaled so the longer side is at most max (never enlarged). */
export function fitWithin(width, height, max = MAX_SIDE) {
  const scale = Math.min(1, max / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A picture file (any size the camera gives) as a downscaled JPEG Blob. */
export async function downscale(file, max = MAX_SIDE) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const { width, height } = fitWithin(bitmap.width, bitmap.height, max);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // a transparent PNG from the gallery becomes white, not black
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close?.();
  return new Promise((resolve, reject) => canvas.toBlob(
    (blob) => (blob ? resolve(blob) : reject(new Error("the picture could not be encoded"))), "image/jpeg", JPEG_QUALITY));
}

/** An <img> preview of a kept blob (or null when the device no longer holds it). */
export async function preview(store, sha256, alt) {
  const held = sha256 ? await getBlob(store, sha256) : null;
  if (!held) return null;
  const url = URL.createObjectURL(held.blob);
  const img = h("img", { class: "photo-preview", src: url, alt });
  img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
  return img;
}

/**
 * A button that opens the camera; the picture is downscaled, kept (addBlob) and handed to onPhoto(sha256).
 * @param {object} store the device database
 * @param {{label: string, name: string, onPhoto: (sha: string) => void, onError: (e: Error) => void}} opts
 */
export function photoButton(store, { label, name, onPhoto, onError }) {
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", class: "visually-hidden",
    id: `photo-${name}`, name, "data-photo": name });
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    try {
      const jpeg = await downscale(file);
      onPhoto(await addBlob(store, jpeg, "image/jpeg"));
    } catch (error) {
      onError(error);
    } finally {
      input.value = "";
    }
  });
  return h("span", { class: "photo-button" }, input, h("label", { for: `photo-${name}`, class: "button secondary" }, label));
}
