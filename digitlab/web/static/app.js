// Ask the server for new digits and show them in the gallery.
"use strict";

const form = document.getElementById("generate-form");
const button = document.getElementById("generate");
const gallery = document.getElementById("gallery");
const statusLine = document.getElementById("status");

function requestBody() {
  // classify: the server also says what the classifier reads each image as.
  const body = { n_samples: Number(document.getElementById("count").value), classify: true };
  const digit = document.getElementById("digit").value;
  const seed = document.getElementById("seed").value.trim();
  if (digit !== "") body.digit = Number(digit);
  if (seed !== "") body.seed = Number(seed);
  return body;
}

// predictions (when the app has a classifier): what it reads each image as.
function showImages(images, label, predictions) {
  gallery.replaceChildren(...images.map((src, i) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = src;
    img.className = "sample";
    img.alt = `generated ${label} ${i + 1}`;
    figure.append(img);
    if (predictions) {
      const caption = document.createElement("figcaption");
      const { digit, probability } = predictions[i];
      caption.textContent = `reads ${digit} (${(100 * probability).toFixed(0)}%)`;
      figure.append(caption);
    }
    return figure;
  }));
}

async function generate(event) {
  event.preventDefault();
  const body = requestBody();
  button.disabled = true;
  statusLine.className = "";
  statusLine.textContent = "Generating…";
  try {
    const response = await fetch("generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const result = await response.json();
    if (!result.success) throw new Error(result.error);
    const label = body.digit === undefined ? "digit" : `digit ${body.digit}`;
    showImages(result.images, label, result.predictions);
    statusLine.textContent = `${result.count} new ${label === "digit" ? "digits" : label + "s"}.`;
  } catch (err) {
    statusLine.className = "error";
    statusLine.textContent = `Could not generate: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", generate);
