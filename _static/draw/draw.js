/*
 * The MNIST Book, chapter 8: draw a digit, see what the network sees and what it thinks.
 *
 * Plain JavaScript, no dependencies, no network. Three parts:
 *
 *   toMnist(imageData)       the drawing made into a 28x28 MNIST image, step for step as
 *                            mnist_lib.preprocess.to_mnist does it (Pillow's Lanczos
 *                            resampling included), so Python and the browser agree;
 *   logits(model, pixels)    the network's forward pass, interpreting the layer list that
 *                            `python -m mnist_lib export-web` wrote (float64 arithmetic);
 *   mount(element, model)    the widget: a drawing pad, the 28x28 input, ten bars.
 *
 * Loaded on every page of the website (Jupyter Book includes _static/*.js) and inlined by
 * mnist_lib.web.widget_html into the chapter's output, so the same code runs in Jupyter.
 * In Node, require() returns the same functions (for tests).
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  }
  if (root) {
    root.MnistDraw = api;
  }
})(typeof window !== "undefined" ? window : typeof globalThis !== "undefined" ? globalThis : null, function () {
  "use strict";

  var SIZE = 28; // the field
  var BOX = 20; // the digit is scaled to fit this box, as in MNIST
  var INK_THRESHOLD = 0.1; // share of the strongest ink below which a pixel does not count for the bounding box
  var PRECISION_BITS = 32 - 8 - 2; // Pillow's fixed-point resampling of 8-bit images

  // ---------------------------------------------------------------------------------------
  // Preprocessing: mnist_lib.preprocess.to_mnist, in JavaScript
  // ---------------------------------------------------------------------------------------

  /** Python's round() and NumPy's rint(): halves go to the even neighbour. */
  function roundHalfEven(x) {
    if (Math.abs(x % 1) === 0.5) {
      return 2 * Math.round(x / 2);
    }
    return Math.round(x);
  }

  /** RGBA pixels as Pillow's convert("L") grey levels (ITU-R 601-2 luma, Pillow's fixed point). */
  function greyLevels(image) {
    var n = image.width * image.height;
    var data = image.data;
    var grey = new Float32Array(n);
    for (var i = 0; i < n; i++) {
      grey[i] = (data[4 * i] * 19595 + data[4 * i + 1] * 38470 + data[4 * i + 2] * 7471 + 0x8000) >> 16;
    }
    return grey;
  }

  function median(values) {
    var sorted = Float64Array.from(values).sort();
    var n = sorted.length;
    return n % 2 ? sorted[(n - 1) / 2] : Math.fround((sorted[n / 2 - 1] + sorted[n / 2]) / 2);
  }

  function sinc(x) {
    if (x === 0) {
      return 1;
    }
    x *= Math.PI;
    return Math.sin(x) / x;
  }

  function lanczos(x) {
    return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
  }

  /** Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output pixel, [first input, weights (fixed point)]. */
  function coefficients(inSize, outSize) {
    var scale = inSize / outSize;
    var filterscale = Math.max(scale, 1);
    var support = 3 * filterscale;
    var ss = 1 / filterscale;
    var out = [];
    for (var xx = 0; xx < outSize; xx++) {
      var center = (xx + 0.5) * scale;
      var xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      var xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      var weights = new Float64Array(xmax);
      var total = 0;
      for (var x = 0; x < xmax; x++) {
        weights[x] = lanczos((x + xmin - center + 0.5) * ss);
        total += weights[x];
      }
      var fixed = new Array(xmax);
      for (x = 0; x < xmax; x++) {
        var w = total !== 0 ? weights[x] / total : weights[x];
        fixed[x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
      }
      out.push({ first: xmin, weights: fixed });
    }
    return out;
  }

  function clip8(sum) {
    if (sum >= 1 << PRECISION_BITS << 8) {
      return 255;
    }
    if (sum <= 0) {
      return 0;
    }
    return Math.floor(sum / (1 << PRECISION_BITS));
  }

  function horizontalPass(src, width, height, newWidth) {
    var c, k, sum;
    var coeffs = coefficients(width, newWidth);
    var out = new Uint8Array(newWidth * height);
    for (var y = 0; y < height; y++) {
      for (var x = 0; x < newWidth; x++) {
        c = coeffs[x];
        sum = 1 << (PRECISION_BITS - 1);
        for (k = 0; k < c.weights.length; k++) {
          sum += src[y * width + c.first + k] * c.weights[k];
        }
        out[y * newWidth + x] = clip8(sum);
      }
    }
    return out;
  }

  function verticalPass(src, width, height, newHeight) {
    var c, k, sum;
    var coeffs = coefficients(height, newHeight);
    var out = new Uint8Array(width * newHeight);
    for (var y = 0; y < newHeight; y++) {
      c = coeffs[y];
      for (var x = 0; x < width; x++) {
        sum = 1 << (PRECISION_BITS - 1);
        for (k = 0; k < c.weights.length; k++) {
          sum += src[(c.first + k) * width + x] * c.weights[k];
        }
        out[y * width + x] = clip8(sum);
      }
    }
    return out;
  }

  /**
   * Pillow's Image.resize(size, LANCZOS) of an 8-bit image (Uint8Array, row-major): two passes,
   * vertical first when the height shrinks more than twice as much as the width (Pillow 12+),
   * else horizontal first; a pass is skipped when its size does not change.
   */
  function resizeLanczos(pixels, width, height, newWidth, newHeight) {
    var verticalFirst = height >= newHeight && height - newHeight > (width - newWidth) * 2;
    var out = pixels;
    if (verticalFirst) {
      if (newHeight !== height) {
        out = verticalPass(out, width, height, newHeight);
      }
      if (newWidth !== width) {
        out = horizontalPass(out, width, newHeight, newWidth);
      }
    } else {
      if (newWidth !== width) {
        out = horizontalPass(out, width, height, newWidth);
      }
      if (newHeight !== height) {
        out = verticalPass(out, newWidth, height, newHeight);
      }
    }
    return out === pixels ? Uint8Array.from(pixels) : out;
  }

  /**
   * One drawing ({width, height, data: RGBA}, e.g. a canvas's ImageData) as MNIST would have it:
   * a Uint8Array of 28x28 grey levels, white ink on black; null when there is no ink.
   * The steps of to_mnist: invert if the background is light; background to 0 and the strongest
   * ink to 255; crop to the ink; scale to fit 20x20 keeping the aspect ratio (Lanczos); paste
   * into 28x28 with the centre of mass on pixel (14, 14).
   */
  function toMnist(image) {
    var width = image.width;
    var height = image.height;
    var grey = greyLevels(image);
    var x, y, i;

    var border = [];
    for (x = 0; x < width; x++) {
      border.push(grey[x], grey[(height - 1) * width + x]);
    }
    for (y = 0; y < height; y++) {
      border.push(grey[y * width], grey[y * width + width - 1]);
    }
    var background = median(border);
    if (background > 127.5) {
      for (i = 0; i < grey.length; i++) {
        grey[i] = 255 - grey[i];
      }
      background = 255 - background;
    }
    var ink = new Float32Array(grey.length);
    var strongest = 0;
    for (i = 0; i < grey.length; i++) {
      ink[i] = Math.max(grey[i] - background, 0);
      strongest = Math.max(strongest, ink[i]);
    }
    if (strongest < 1) {
      return null; // one grey level: nothing drawn
    }
    var factor = Math.fround(255 / strongest); // NumPy multiplies a float32 array by a float in float32
    var top = height;
    var bottom = -1;
    var left = width;
    var right = -1;
    for (y = 0; y < height; y++) {
      for (x = 0; x < width; x++) {
        i = y * width + x;
        ink[i] = Math.fround(ink[i] * factor);
        if (ink[i] > INK_THRESHOLD * 255) {
          top = Math.min(top, y);
          bottom = Math.max(bottom, y);
          left = Math.min(left, x);
          right = Math.max(right, x);
        }
      }
    }
    var h = bottom - top + 1;
    var w = right - left + 1;
    var crop = new Uint8Array(w * h);
    for (y = 0; y < h; y++) {
      for (x = 0; x < w; x++) {
        crop[y * w + x] = Math.min(255, roundHalfEven(ink[(top + y) * width + left + x]));
      }
    }
    var scale = BOX / Math.max(h, w);
    var newW = Math.max(1, roundHalfEven(w * scale));
    var newH = Math.max(1, roundHalfEven(h * scale));
    var digit = resizeLanczos(crop, w, h, newW, newH);

    // Integer shift that puts the centre of mass on (14, 14), clamped so no ink is cut off.
    var mass = 0;
    var rowMoment = 0;
    var colMoment = 0;
    for (y = 0; y < newH; y++) {
      for (x = 0; x < newW; x++) {
        var v = digit[y * newW + x];
        mass += v;
        rowMoment += v * y;
        colMoment += v * x;
      }
    }
    mass = mass || 1;
    var shiftY = Math.min(Math.max(roundHalfEven(SIZE / 2 - rowMoment / mass), 0), SIZE - newH);
    var shiftX = Math.min(Math.max(roundHalfEven(SIZE / 2 - colMoment / mass), 0), SIZE - newW);
    var out = new Uint8Array(SIZE * SIZE);
    for (y = 0; y < newH; y++) {
      for (x = 0; x < newW; x++) {
        out[(shiftY + y) * SIZE + shiftX + x] = digit[y * newW + x];
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // The forward pass: the exported layer list, interpreted
  // ---------------------------------------------------------------------------------------

  function floats(base64) {
    var bytes = atob(base64);
    var view = new DataView(new ArrayBuffer(bytes.length));
    for (var i = 0; i < bytes.length; i++) {
      view.setUint8(i, bytes.charCodeAt(i));
    }
    var out = new Float64Array(bytes.length / 4);
    for (i = 0; i < out.length; i++) {
      out[i] = view.getFloat32(4 * i, true); // little-endian float32, as exported
    }
    return out;
  }

  /** The exported model (parsed JSON) with its weights decoded; decoding happens once per model. */
  function decodeModel(spec) {
    if (spec.decoded) {
      return spec;
    }
    if (spec.format !== "mnist_lib web model 2") {
      throw new Error("not a model exported by `python -m mnist_lib export-web`: format " + spec.format);
    }
    var members = spec.members.map(function (member) {
      return member.layers.map(function (layer) {
        var copy = Object.assign({}, layer);
        ["weight", "bias", "scale", "shift"].forEach(function (key) {
          if (typeof layer[key] === "string") {
            copy[key] = floats(layer[key]);
          }
        });
        return copy;
      });
    });
    return Object.assign({}, spec, { members: members, decoded: true });
  }

  function conv2d(x, layer) {
    var inC = layer.in, outC = layer.out;
    var kh = layer.kernel[0], kw = layer.kernel[1];
    var sh = layer.stride[0], sw = layer.stride[1];
    var ph = layer.padding[0], pw = layer.padding[1];
    var h = x.h, w = x.w;
    var oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
    var ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
    var out = new Float64Array(outC * oh * ow);
    var W = layer.weight, data = x.data;
    for (var o = 0; o < outC; o++) {
      for (var oy = 0; oy < oh; oy++) {
        for (var ox = 0; ox < ow; ox++) {
          var sum = layer.bias[o];
          for (var c = 0; c < inC; c++) {
            for (var i = 0; i < kh; i++) {
              var iy = oy * sh - ph + i;
              if (iy < 0 || iy >= h) {
                continue;
              }
              var row = (c * h + iy) * w;
              var wrow = ((o * inC + c) * kh + i) * kw;
              for (var j = 0; j < kw; j++) {
                var ix = ox * sw - pw + j;
                if (ix >= 0 && ix < w) {
                  sum += data[row + ix] * W[wrow + j];
                }
              }
            }
          }
          out[(o * oh + oy) * ow + ox] = sum;
        }
      }
    }
    return { data: out, c: outC, h: oh, w: ow };
  }

  function pool(x, layer, takeMax) {
    var kh = layer.kernel[0], kw = layer.kernel[1];
    var sh = layer.stride[0], sw = layer.stride[1];
    var oh = Math.floor((x.h - kh) / sh) + 1;
    var ow = Math.floor((x.w - kw) / sw) + 1;
    var out = new Float64Array(x.c * oh * ow);
    for (var c = 0; c < x.c; c++) {
      for (var oy = 0; oy < oh; oy++) {
        for (var ox = 0; ox < ow; ox++) {
          var acc = takeMax ? -Infinity : 0;
          for (var i = 0; i < kh; i++) {
            for (var j = 0; j < kw; j++) {
              var v = x.data[(c * x.h + oy * sh + i) * x.w + ox * sw + j];
              acc = takeMax ? Math.max(acc, v) : acc + v;
            }
          }
          out[(c * oh + oy) * ow + ox] = takeMax ? acc : acc / (kh * kw);
        }
      }
    }
    return { data: out, c: x.c, h: oh, w: ow };
  }

  function linear(x, layer) {
    var out = new Float64Array(layer.out);
    for (var o = 0; o < layer.out; o++) {
      var sum = layer.bias[o];
      var base = o * layer.in;
      for (var i = 0; i < layer.in; i++) {
        sum += layer.weight[base + i] * x.data[i];
      }
      out[o] = sum;
    }
    return { data: out, c: layer.out, h: 1, w: 1 };
  }

  function elementwise(x, f) {
    var out = new Float64Array(x.data.length);
    for (var i = 0; i < out.length; i++) {
      out[i] = f(x.data[i], i);
    }
    return { data: out, c: x.c, h: x.h, w: x.w };
  }

  function runLayers(layers, x) {
    layers.forEach(function (layer) {
      switch (layer.type) {
        case "standardize":  // the model's own input scale, always its first layer
          x = elementwise(x, function (v) { return (v - layer.mean) / layer.std; });
          break;
        case "conv2d":
          x = conv2d(x, layer);
          break;
        case "linear":
          x = linear(x, layer);
          break;
        case "maxpool":
          x = pool(x, layer, true);
          break;
        case "avgpool":
          x = pool(x, layer, false);
          break;
        case "affine": {
          var per = x.data.length / layer.channels;
          x = elementwise(x, function (v, i) {
            var c = Math.floor(i / per);
            return v * layer.scale[c] + layer.shift[c];
          });
          break;
        }
        case "relu":
          x = elementwise(x, function (v) { return v > 0 ? v : 0; });
          break;
        case "elu":
          x = elementwise(x, function (v) { return v > 0 ? v : layer.alpha * Math.expm1(v); });
          break;
        case "tanh":
          x = elementwise(x, Math.tanh);
          break;
        case "sigmoid":
          x = elementwise(x, function (v) { return 1 / (1 + Math.exp(-v)); });
          break;
        case "flatten":
          x = { data: x.data, c: x.data.length, h: 1, w: 1 };
          break;
        default:
          throw new Error("unknown layer type in the exported model: " + layer.type);
      }
    });
    return x.data;
  }

  /** Each member's logits (arrays of 10) for 784 grey levels 0-255 (white ink on black). */
  function logits(model, pixels) {
    model = decodeModel(model);
    var input = new Float64Array(SIZE * SIZE);
    for (var i = 0; i < input.length; i++) {
      input[i] = pixels[i] / 255;  // [0, 1] pixels, as every model of the library takes them
    }
    return model.members.map(function (layers) {
      return Array.from(runLayers(layers, { data: input, c: 1, h: SIZE, w: SIZE }));
    });
  }

  function softmax(z) {
    var top = Math.max.apply(null, z);
    var e = z.map(function (v) { return Math.exp(v - top); });
    var total = e.reduce(function (a, b) { return a + b; }, 0);
    return e.map(function (v) { return v / total; });
  }

  /** Class probabilities: the members' softmax outputs, averaged. */
  function probabilities(model, pixels) {
    var all = logits(model, pixels).map(softmax);
    return all[0].map(function (_, k) {
      return all.reduce(function (acc, p) { return acc + p[k]; }, 0) / all.length;
    });
  }

  // ---------------------------------------------------------------------------------------
  // The pen: a share of the drawing's size (mnist_lib.web.pen_width)
  // ---------------------------------------------------------------------------------------

  /** The larger side of the bounding box of the strokes' points ([[{x, y}, ...], ...]), in pad pixels. */
  function drawingSize(strokes) {
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    strokes.forEach(function (stroke) {
      stroke.forEach(function (p) {
        minX = Math.min(minX, p.x);
        maxX = Math.max(maxX, p.x);
        minY = Math.min(minY, p.y);
        maxY = Math.max(maxY, p.y);
      });
    });
    return maxX >= minX ? Math.max(maxX - minX, maxY - minY) : 0;
  }

  /**
   * The pen's width for these strokes. A fixed pen would make a small drawing a blob once it
   * is scaled to MNIST's 20x20 box, so the pen is a share of the drawing's size, within limits.
   */
  function penWidth(strokes, pad) {
    return Math.min(Math.max(pad.pen_share * drawingSize(strokes), pad.min_pen), pad.pen);
  }

  // ---------------------------------------------------------------------------------------
  // The widget
  // ---------------------------------------------------------------------------------------

  function element(tag, className, parent, text) {
    var el = document.createElement(tag);
    if (className) {
      el.className = className;
    }
    if (text !== undefined) {
      el.textContent = text;
    }
    if (parent) {
      parent.appendChild(el);
    }
    return el;
  }

  /**
   * Build the widget inside `host` for the exported `spec`. Returns its state, also kept as
   * host.mnistDraw: {input (the last 28x28, or null), probabilities, prediction, strokes, update(), clear()}.
   * The predicted digit is also host's data-prediction attribute ("" while there is none), and
   * host's data-status says "empty", "no-digit" (too little ink: a click, a short dash) or "digit".
   */
  function mount(host, spec) {
    var model = decodeModel(spec);
    // The pad's size and pen, as mnist_lib.web exports them (defaults for older exports)
    var padSpec = Object.assign({ size: 280, pen: 20, pen_share: 20 / 240, min_pen: 3, min_drawing: 0.15 }, spec.pad);
    var padSize = padSpec.size;
    host.textContent = "";
    host.classList.add("mnist-draw");

    var left = element("div", "mnist-draw-panel", host);
    var pad = element("canvas", "mnist-draw-pad", left);
    pad.width = pad.height = padSize;
    pad.setAttribute("role", "img");
    pad.setAttribute("aria-label", "drawing pad: draw one digit with the mouse or a finger");
    var tools = element("div", "mnist-draw-tools", left);
    var clearButton = element("button", "mnist-draw-clear", tools, "Clear");
    clearButton.type = "button";
    element("span", "mnist-draw-hint", tools, "Draw one digit, 0 to 9.");

    var right = element("div", "mnist-draw-panel mnist-draw-output", host);
    var top = element("div", "mnist-draw-top", right);
    var seenBox = element("figure", "mnist-draw-seen-box", top);
    var seen = element("canvas", "mnist-draw-seen", seenBox);
    seen.width = seen.height = SIZE;
    seen.setAttribute("role", "img");
    seen.setAttribute("aria-label", "the 28 by 28 image the network reads");
    element("figcaption", "mnist-draw-caption", seenBox, "What the network sees: 28 \u00d7 28, as in MNIST");
    var answer = element("div", "mnist-draw-answer", top);
    element("span", "mnist-draw-answer-label", answer, "Prediction");
    var digitOut = element("output", "mnist-draw-digit", answer, "\u2013");
    digitOut.setAttribute("aria-live", "polite"); // screen readers announce each new answer
    var statusOut = element("output", "mnist-draw-status", answer, "");
    statusOut.setAttribute("aria-live", "polite");
    var bars = element("div", "mnist-draw-bars", right);
    var rows = [];
    for (var d = 0; d < 10; d++) {
      var row = element("div", "mnist-draw-bar", bars);
      row.setAttribute("data-digit", String(d));
      element("span", "mnist-draw-bar-digit", row, String(d));
      var track = element("span", "mnist-draw-bar-track", row);
      var fill = element("span", "mnist-draw-bar-fill", track);
      var value = element("span", "mnist-draw-bar-value", row, "");
      rows.push({ row: row, fill: fill, value: value });
    }
    var about = element("div", "mnist-draw-about", right);
    about.textContent = (spec.title || spec.name) +
      (typeof spec.test_acc === "number" ? "; " + (100 * spec.test_acc).toFixed(2) + "% on MNIST's test set" : "");

    var ctx = pad.getContext("2d", { willReadFrequently: true });
    var seenCtx = seen.getContext("2d");
    var state = { input: null, probabilities: null, prediction: null, strokes: [] };

    /** The pad drawn again from the strokes, all with the pen their size calls for. */
    function render() {
      var pen = penWidth(state.strokes, padSpec);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, padSize, padSize);
      ctx.strokeStyle = ctx.fillStyle = "#000000";
      ctx.lineWidth = pen;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      state.strokes.forEach(function (stroke) {
        ctx.beginPath();
        ctx.arc(stroke[0].x, stroke[0].y, pen / 2, 0, 2 * Math.PI); // a click leaves a dot
        ctx.fill();
        if (stroke.length > 1) {
          ctx.beginPath();
          ctx.moveTo(stroke[0].x, stroke[0].y);
          stroke.slice(1).forEach(function (p) {
            ctx.lineTo(p.x, p.y);
          });
          ctx.stroke();
        }
      });
    }

    function show(input, probs) {
      var image = seenCtx.createImageData(SIZE, SIZE);
      for (var i = 0; i < SIZE * SIZE; i++) {
        var v = input ? input[i] : 0;
        image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
        image.data[4 * i + 3] = 255;
      }
      seenCtx.putImageData(image, 0, 0);
      var best = -1;
      if (probs) {
        best = probs.indexOf(Math.max.apply(null, probs));
      }
      rows.forEach(function (r, k) {
        var p = probs ? probs[k] : 0;
        r.fill.style.width = (100 * p).toFixed(1) + "%";
        r.value.textContent = probs ? (100 * p).toFixed(1) + "%" : "";
        r.row.classList.toggle("mnist-draw-best", k === best);
      });
      digitOut.textContent = best >= 0 ? String(best) : "\u2013";
      host.setAttribute("data-prediction", best >= 0 ? String(best) : "");
      host.setAttribute("data-confidence", best >= 0 ? probs[best].toFixed(4) : "");
    }

    var pending = 0;
    function update() {
      if (pending) {
        cancelAnimationFrame(pending);
        pending = 0;
      }
      render();
      // Too little ink (a click, a short dash) is no digit, though the network would name one.
      var tooSmall = state.strokes.length > 0 && drawingSize(state.strokes) < padSpec.min_drawing * padSize;
      var input = tooSmall ? null : toMnist(ctx.getImageData(0, 0, padSize, padSize));
      state.input = input;
      state.probabilities = input ? probabilities(model, input) : null;
      state.prediction = input ? state.probabilities.indexOf(Math.max.apply(null, state.probabilities)) : null;
      show(input, state.probabilities);
      statusOut.textContent = tooSmall ? "No digit yet: draw one digit, larger." : "";
      host.setAttribute("data-status", tooSmall ? "no-digit" : input ? "digit" : "empty");
    }
    function scheduleUpdate() {
      if (!pending) {
        pending = requestAnimationFrame(function () {
          pending = 0;
          update();
        });
      }
    }
    function clear() {
      state.strokes = [];
      update();
    }

    var activePointer = null;
    function point(event) {
      // Pad pixels from the pointer's page position: inside the border, scaled to the drawing's size.
      var rect = pad.getBoundingClientRect();
      return {
        x: ((event.clientX - rect.left - pad.clientLeft) * padSize) / pad.clientWidth,
        y: ((event.clientY - rect.top - pad.clientTop) * padSize) / pad.clientHeight,
      };
    }
    pad.addEventListener("pointerdown", function (event) {
      if (activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) {
        return;
      }
      event.preventDefault();
      activePointer = event.pointerId;
      if (pad.setPointerCapture) {
        try {
          pad.setPointerCapture(event.pointerId);
        } catch (e) {
          /* synthetic pointers cannot always be captured; drawing works without */
        }
      }
      state.strokes.push([point(event)]);
      scheduleUpdate();
    });
    pad.addEventListener("pointermove", function (event) {
      if (event.pointerId !== activePointer) {
        return;
      }
      event.preventDefault();
      var events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      if (!events.length) {
        events = [event];
      }
      var stroke = state.strokes[state.strokes.length - 1];
      events.forEach(function (e) {
        stroke.push(point(e));
      });
      scheduleUpdate(); // the pad is drawn again, and read, once per frame
    });
    function end(event) {
      if (event.pointerId !== activePointer) {
        return;
      }
      activePointer = null;
      update(); // at once: the answer is there when the pen lifts
    }
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointercancel", end);
    clearButton.addEventListener("click", clear);

    state.update = update;
    state.clear = clear;
    state.pad = pad;
    state.model = model;
    host.mnistDraw = state;
    clear();
    host.setAttribute("data-ready", "true");
    return state;
  }

  return {
    SIZE: SIZE,
    BOX: BOX,
    roundHalfEven: roundHalfEven,
    greyLevels: greyLevels,
    resizeLanczos: resizeLanczos,
    toMnist: toMnist,
    drawingSize: drawingSize,
    penWidth: penWidth,
    decodeModel: decodeModel,
    logits: logits,
    softmax: softmax,
    probabilities: probabilities,
    mount: mount,
  };
});
