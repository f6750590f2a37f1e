// How a record's key or value is shown: the fetch API gives JSON values as
// JSON, UTF-8 text as a string and other bytes as base64 (with
// value_encoding); the viewer can show any of them as JSON, text, base64
// or hex.

export function toBytes (v, encoding) {
  if (v === null || v === undefined) return null
  if (encoding === 'base64') return Uint8Array.from(atob(v), c => c.charCodeAt(0))
  const s = typeof v === 'string' ? v : JSON.stringify(v)
  return new TextEncoder().encode(s)
}

export function hex (b) {
  const out = []
  for (let i = 0; i < b.length; i += 16) {
    const row = Array.from(b.slice(i, i + 16))
    out.push(i.toString(16).padStart(6, '0') + '  ' + row.map(x => x.toString(16).padStart(2, '0')).join(' ').padEnd(48) +
      ' ' + row.map(x => x >= 32 && x < 127 ? String.fromCharCode(x) : '.').join(''))
  }
  return out.join('\n')
}

export function base64 (b) {
  let s = ''
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000))
  return btoa(s)
}

// show renders v (as the fetch API gave it) in mode: auto, json, text,
// base64, hex. Long output is cut at limit characters.
export function show (v, encoding, mode, limit = 2000) {
  const b = toBytes(v, encoding)
  if (b === null) return 'null'
  let s
  switch (mode) {
    case 'hex': s = hex(b); break
    case 'base64': s = base64(b); break
    case 'text': s = new TextDecoder('utf-8', { fatal: false }).decode(b); break
    case 'json':
      try { s = JSON.stringify(JSON.parse(new TextDecoder().decode(b)), null, 2) } catch (e) { s = '(not JSON) ' + new TextDecoder().decode(b) }
      break
    default:
      if (encoding === 'base64') s = hex(b)
      else s = typeof v === 'string' ? v : JSON.stringify(v)
  }
  return s.length > limit ? s.slice(0, limit) + '… (' + b.length + ' bytes)' : s
}
