// The simrec page: choose or drop an image, type expressions, draw each answer's box (and mask) over the image.
// Plain browser JavaScript with no dependencies, served by the app itself, so it works offline.
"use strict";

// The colours simrec predict draws its pictures with; expression k gets PALETTE[k % PALETTE.length].
const PALETTE = ["#e6194b", "#3cb44b", "#0082c8", "#f58230", "#911eb4", "#46f0f0", "#f032e6", "#d2f53c",
  "#008080", "#aa6e28"];
const MASK_ALPHA = 115; // of 255, as the pictures' mask opacity
const SVG_NS = "http://www.w3.org/2000/svg";

const elements = Object.fromEntries(
  ["model-info", "drop-zone", "file-input", "demo-button", "image-name", "expressions", "masks-option", "masks",
    "find-button", "message", "stage", "photo", "overlay", "placeholder", "answers"]
    .map((id) => [id, document.getElementById(id)]),
);
const state = { image: null, name: null, objectUrl: null, hasMasks: false, busy: false };

function showMessage(text) {
  elements.message.textContent = text;
  elements.message.hidden = false;
}

function clearMessage() {
  elements.message.hidden = true;
  elements.message.textContent = "";
}

function clearAnswers() {
  elements.overlay.replaceChildren();
  elements.answers.replaceChildren();
  document.body.dataset.state = "idle";
}

async function loadInfo() {
  try {
    const response = await fetch("/info");
    const info = await response.json();
    const [height, width] = info.input_size;
    elements["model-info"].textContent = `${info.model} trained on ${info.dataset ?? "unknown data"}, ` +
      `${width}×${height} input, ${info.vocabulary_size} words, ${info.device} ${info.precision} (${info.runtime})`;
    state.hasMasks = Boolean(info.masks);
    elements["masks-option"].hidden = !state.hasMasks;
  } catch (error) {
    elements["model-info"].textContent = "the server did not describe its model";
  }
}

function setImage(blob, name) {
  clearMessage();
  clearAnswers();
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.image = blob;
  state.name = name;
  state.objectUrl = URL.createObjectURL(blob);
  elements["image-name"].textContent = name;
  elements.photo.onload = () => {
    elements.stage.hidden = false;
    elements.placeholder.hidden = true;
    const { naturalWidth: width, naturalHeight: height } = elements.photo;
    elements.overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
  };
  elements.photo.onerror = () => {
    elements.stage.hidden = true;
    elements.placeholder.hidden = false;
    showMessage(`${name} cannot be shown by this browser; it may not be an image. Find asks the server anyway.`);
  };
  elements.photo.src = state.objectUrl;
}

async function useDemo() {
  try {
    const response = await fetch("/demo.jpg");
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    setImage(await response.blob(), "demo.jpg");
    if (!elements.expressions.value.trim()) elements.expressions.value = "the big red circle";
  } catch (error) {
    showMessage(`The demo image could not be loaded: ${error.message}`);
  }
}

function expressionLines() {
  return elements.expressions.value.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);
}

async function find() {
  if (state.busy) return;
  clearMessage();
  if (!state.image) {
    showMessage("Choose an image first: drop one on the box, click it, or use the demo image.");
    return;
  }
  const expressions = expressionLines();
  if (expressions.length === 0) {
    showMessage("Type at least one expression, for example “the big red circle”.");
    return;
  }
  const form = new FormData();
  form.append("image", state.image, state.name);
  for (const expression of expressions) form.append("expression", expression);
  if (state.hasMasks && elements.masks.checked) form.append("masks", "png");
  setBusy(true);
  try {
    const response = await fetch("/predict", { method: "POST", body: form });
    const body = await readBody(response);
    if (!response.ok) {
      clearAnswers();
      showMessage(body.detail ?? `The server answered ${response.status} ${response.statusText}.`);
      document.body.dataset.state = "error";
      return;
    }
    await drawAnswers(body.results);
  } catch (error) {
    showMessage(`The server could not be reached: ${error.message}`);
  } finally {
    setBusy(false);
  }
}

async function readBody(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (error) {
    return { detail: text || undefined };
  }
}

function setBusy(busy) {
  state.busy = busy;
  elements["find-button"].disabled = busy;
  elements["find-button"].textContent = busy ? "Finding…" : "Find";
  document.body.dataset.state = busy ? "busy" : document.body.dataset.state;
}

async function drawAnswers(results) {
  clearAnswers();
  if (results.length === 0) return;
  const { width, height } = results[0];
  const overlay = elements.overlay;
  overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
  overlay.setAttribute("preserveAspectRatio", "none");
  const unitsPerPixel = width / Math.max(1, elements.photo.clientWidth);
  for (const [index, result] of results.entries()) {
    const colour = PALETTE[index % PALETTE.length];
    if (typeof result.mask === "string") overlay.append(await maskImage(result.mask, colour, width, height));
    overlay.append(boxElement(result, colour, index));
    overlay.append(labelElement(result, colour, unitsPerPixel));
    elements.answers.append(answerItem(result, colour));
  }
  document.body.dataset.state = "answered";
}

function boxElement(result, colour, index) {
  const [x1, y1, x2, y2] = result.box;
  const rect = document.createElementNS(SVG_NS, "rect");
  const attributes = { x: x1, y: y1, width: x2 - x1, height: y2 - y1, stroke: colour, "stroke-width": 3 };
  for (const [name, value] of Object.entries(attributes)) rect.setAttribute(name, value);
  rect.setAttribute("vector-effect", "non-scaling-stroke");
  rect.classList.add("answer-box");
  rect.dataset.index = index;
  rect.dataset.expression = result.expression;
  rect.dataset.box = JSON.stringify(result.box);
  rect.dataset.score = result.score;
  return rect;
}

function labelElement(result, colour, unitsPerPixel) {
  const [x1, y1] = result.box;
  const text = document.createElementNS(SVG_NS, "text");
  const size = 14 * unitsPerPixel;
  text.setAttribute("x", x1);
  text.setAttribute("y", y1 > size * 1.2 ? y1 - size * 0.3 : y1 + size);
  text.setAttribute("fill", colour);
  text.setAttribute("style", `font-size:${size}px;stroke-width:${3 * unitsPerPixel}px`);
  text.textContent = `${result.expression} ${result.score.toFixed(2)}`;
  return text;
}

function maskImage(base64Png, colour, width, height) {
  // The mask PNG is white on black at the image's size; it is recoloured into a translucent layer.
  return new Promise((resolve, reject) => {
    const source = new Image();
    source.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const context = canvas.getContext("2d");
      context.drawImage(source, 0, 0, width, height);
      const pixels = context.getImageData(0, 0, width, height);
      const [red, green, blue] = [1, 3, 5].map((start) => parseInt(colour.slice(start, start + 2), 16));
      for (let offset = 0; offset < pixels.data.length; offset += 4) {
        const inside = pixels.data[offset] > 127;
        pixels.data.set([red, green, blue, inside ? MASK_ALPHA : 0], offset);
      }
      context.putImageData(pixels, 0, 0);
      const layer = document.createElementNS(SVG_NS, "image");
      for (const [name, value] of Object.entries({ x: 0, y: 0, width, height, href: canvas.toDataURL() })) {
        layer.setAttribute(name, value);
      }
      layer.setAttribute("preserveAspectRatio", "none");
      layer.classList.add("answer-mask");
      resolve(layer);
    };
    source.onerror = () => reject(new Error("a mask could not be decoded"));
    source.src = `data:image/png;base64,${base64Png}`;
  });
}

function answerItem(result, colour) {
  const item = document.createElement("li");
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.style.background = colour;
  const expression = document.createElement("strong");
  expression.textContent = result.expression;
  const numbers = document.createElement("span");
  numbers.className = "numbers";
  const box = result.box.map((value) => value.toFixed(1)).join(", ");
  numbers.textContent = ` score ${result.score.toFixed(3)} · box ${box}` +
    (result.mask_area !== null ? ` · mask ${result.mask_area} px` : "");
  item.append(swatch, expression, numbers);
  if (result.oov_words.length > 0) {
    const warning = document.createElement("div");
    warning.className = "muted";
    warning.textContent = `not in the model's vocabulary (read as unknown): ${result.oov_words.join(", ")}`;
    item.append(warning);
  }
  return item;
}

function wireDropZone() {
  const zone = elements["drop-zone"];
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) setImage(file, file.name);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") elements["file-input"].click();
  });
  elements["file-input"].addEventListener("change", () => {
    const file = elements["file-input"].files[0];
    if (file) setImage(file, file.name);
  });
}

wireDropZone();
elements["demo-button"].addEventListener("click", useDemo);
elements["find-button"].addEventListener("click", find);
elements.expressions.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) find();
});
loadInfo();
