/* The app's preprocessing in the browser: resize the short side (antialiased, the separable
   fixed-point resampling of Pillow, which torchvision's uint8 kernel follows to within a level or
   two), then centre-crop exactly as torchvision's CenterCrop does. Input and output are RGB uint8. */
(function () {
  "use strict";
  const PRECISION_BITS = 22;  // 32 - 8 - 2, as in Pillow's Resample.c
  const ONE = 1 << PRECISION_BITS;
  const FILTERS = {
    bicubic: { support: 2.0, f(x) {
      const a = -0.5; x = Math.abs(x);
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0; } },
    bilinear: { support: 1.0, f(x) { x = Math.abs(x); return x < 1.0 ? 1.0 - x : 0.0; } },
    nearest: { support: 0.5, f(x) { return x >= -0.5 && x < 0.5 ? 1.0 : 0.0; } },
  };

  function coefficients(inSize, outSize, filter) {
    const scale = inSize / outSize, filterscale = Math.max(scale, 1.0);
    const support = filter.support * filterscale, ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2), kk = new Float64Array(outSize * ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      let ww = 0;
      const w = new Float64Array(xmax);
      for (let x = 0; x < xmax; x++) { w[x] = filter.f((x + xmin - center + 0.5) * ss); ww += w[x]; }
      for (let x = 0; x < xmax; x++) {
        const v = ww !== 0 ? w[x] / ww : w[x];
        kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
      }
      bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = xmax;
    }
    return { bounds, kk, ksize };
  }

  function clip8(ss) { const v = Math.floor(ss / ONE); return v < 0 ? 0 : v > 255 ? 255 : v; }

  // src: RGB uint8 [h, w, 3] -> RGB uint8 [h, outW, 3]
  function horizontal(src, w, h, outW, filter) {
    const { bounds, kk, ksize } = coefficients(w, outW, filter), out = new Uint8Array(h * outW * 3);
    for (let y = 0; y < h; y++) {
      const row = y * w * 3;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], k = xx * ksize;
        let r = ONE / 2, g = ONE / 2, b = ONE / 2;
        for (let x = 0; x < xmax; x++) {
          const p = row + (x + xmin) * 3, c = kk[k + x];
          r += src[p] * c; g += src[p + 1] * c; b += src[p + 2] * c;
        }
        const o = (y * outW + xx) * 3;
        out[o] = clip8(r); out[o + 1] = clip8(g); out[o + 2] = clip8(b);
      }
    }
    return out;
  }

  function vertical(src, w, h, outH, filter) {
    const { bounds, kk, ksize } = coefficients(h, outH, filter), out = new Uint8Array(outH * w * 3);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], k = yy * ksize;
      for (let x = 0; x < w; x++) {
        let r = ONE / 2, g = ONE / 2, b = ONE / 2;
        for (let y = 0; y < ymax; y++) {
          const p = ((y + ymin) * w + x) * 3, c = kk[k + y];
          r += src[p] * c; g += src[p + 1] * c; b += src[p + 2] * c;
        }
        const o = (yy * w + x) * 3;
        out[o] = clip8(r); out[o + 1] = clip8(g); out[o + 2] = clip8(b);
      }
    }
    return out;
  }

  // torchvision's Resize(size) output: short side = size, long side = int(size * long / short), capped.
  function resizedShape(w, h, size, maxSize) {
    const short = Math.min(w, h), long = Math.max(w, h);
    let newShort = size, newLong = Math.floor(size * long / short);
    if (maxSize && newLong > maxSize) { newShort = Math.floor(maxSize * newShort / newLong); newLong = maxSize; }
    return w <= h ? [newShort, newLong] : [newLong, newShort];
  }

  function roundHalfEven(x) {  // Python's round(), which CenterCrop uses
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function centerCrop(src, w, h, s) {
    // Smaller than the crop (only very long strips): pad with black first, as torchvision does.
    const padL = w < s ? Math.floor((s - w) / 2) : 0, padT = h < s ? Math.floor((s - h) / 2) : 0;
    const pw = Math.max(w, s), ph = Math.max(h, s);
    const top = roundHalfEven((ph - s) / 2), left = roundHalfEven((pw - s) / 2);
    const out = new Uint8Array(s * s * 3);
    for (let y = 0; y < s; y++) {
      const sy = y + top - padT;
      if (sy < 0 || sy >= h) continue;
      for (let x = 0; x < s; x++) {
        const sx = x + left - padL;
        if (sx < 0 || sx >= w) continue;
        const o = (y * s + x) * 3, p = (sy * w + sx) * 3;
        out[o] = src[p]; out[o + 1] = src[p + 1]; out[o + 2] = src[p + 2];
      }
    }
    return out;
  }

  function rgbOf(rgba, n) {
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) { rgb[i * 3] = rgba[i * 4]; rgb[i * 3 + 1] = rgba[i * 4 + 1]; rgb[i * 3 + 2] = rgba[i * 4 + 2]; }
    return rgb;
  }

  /** RGBA ImageData-like {data, width, height} -> the model's S x S RGB uint8 view. */
  function modelPixels(image, pre) {
    const filter = FILTERS[pre.interpolation] || FILTERS.bilinear;
    const w = image.width, h = image.height;
    const [nw, nh] = resizedShape(w, h, pre.resize, pre.resize * 8);
    let px = rgbOf(image.data, w * h);
    if (nw !== w) px = horizontal(px, w, h, nw, filter);
    if (nh !== h) px = vertical(px, nw, h, nh, filter);
    return centerCrop(px, nw, nh, pre.crop);
  }

  window.TLPreprocess = { modelPixels, resizedShape };
})();
