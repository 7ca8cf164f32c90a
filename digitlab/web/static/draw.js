// Draw a digit with mouse, pen or touch (pointer events); when a stroke ends,
// send the canvas to /classify and show the reading, the ten probabilities and
// the 28x28 image the network saw.
"use strict";

const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const statusLine = document.getElementById("status");
const digitText = document.getElementById("read-digit");
const confidenceText = document.getElementById("read-confidence");
const preview = document.getElementById("preview");
const bars = [...document.querySelectorAll("#bars li")];

// A digit drawn across most of the canvas is shrunk to MNIST's 20-pixel box;
// at this width its strokes end up about as thick as MNIST's.
const LINE_WIDTH = 20;
let drawing = false;
let last = null;
let sent = 0; // number of the latest request; older answers are ignored

function setUpPen() {
  pen.lineWidth = LINE_WIDTH;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.strokeStyle = "#fff";
  pen.fillStyle = "#fff";
}

// Pointer position in canvas pixels (the canvas may be shown smaller than 280 px).
function position(event) {
  const box = canvas.getBoundingClientRect();
  return {
    x: (event.clientX - box.left) * (canvas.width / box.width),
    y: (event.clientY - box.top) * (canvas.height / box.height),
  };
}

function dot(point) {
  pen.beginPath();
  pen.arc(point.x, point.y, LINE_WIDTH / 2, 0, 2 * Math.PI);
  pen.fill();
}

function lineTo(point) {
  pen.beginPath();
  pen.moveTo(last.x, last.y);
  pen.lineTo(point.x, point.y);
  pen.stroke();
  last = point;
}

function startStroke(event) {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  drawing = true;
  last = position(event);
  dot(last);
}

function continueStroke(event) {
  if (!drawing) return;
  // Coalesced events keep fast strokes smooth where the browser batches moves.
  const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const move of moves.length ? moves : [event]) lineTo(position(move));
}

function endStroke() {
  if (!drawing) return;
  drawing = false;
  classify();
}

function showReading(result) {
  const p = result.probabilities;
  digitText.textContent = String(result.digit);
  confidenceText.textContent = `(${(100 * p[result.digit]).toFixed(0)}% sure)`;
  preview.src = result.preview;
  bars.forEach((bar, digit) => {
    bar.querySelector(".fill").style.width = `${(100 * p[digit]).toFixed(1)}%`;
    bar.querySelector(".value").textContent = `${(100 * p[digit]).toFixed(0)}%`;
    bar.classList.toggle("best", digit === result.digit);
  });
}

function clearReading() {
  digitText.textContent = "–";
  confidenceText.textContent = "";
  preview.removeAttribute("src");
  bars.forEach((bar) => {
    bar.querySelector(".fill").style.width = "0";
    bar.querySelector(".value").textContent = "–";
    bar.classList.remove("best");
  });
}

async function classify() {
  const number = ++sent;
  statusLine.className = "";
  statusLine.textContent = "Reading…";
  try {
    const response = await fetch("classify", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: canvas.toDataURL("image/png") }),
    });
    const result = await response.json();
    if (number !== sent) return; // a newer stroke or Clear came first
    if (!result.success) throw new Error(result.error);
    showReading(result);
    statusLine.textContent = "";
  } catch (err) {
    if (number !== sent) return;
    statusLine.className = "error";
    statusLine.textContent = `Could not read the digit: ${err.message}`;
  }
}

function clearCanvas() {
  sent += 1;
  pen.clearRect(0, 0, canvas.width, canvas.height);
  clearReading();
  statusLine.className = "";
  statusLine.textContent = "";
}

setUpPen();
canvas.addEventListener("pointerdown", startStroke);
canvas.addEventListener("pointermove", continueStroke);
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);
document.getElementById("clear").addEventListener("click", clearCanvas);
