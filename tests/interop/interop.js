// Packets made and checked by the npm reference implementations (ilp-packet,
// ilp-protocol-stream), for Riptide's interoperability test.
//   node interop.js generate <seed>   prints JSON vectors made by the JS libraries
//   node interop.js check             reads Riptide-made vectors on stdin, decodes them
//                                     here, prints mismatches and exits 1 if any
'use strict'
const IlpPacket = require('ilp-packet')
const StreamPacket = require('ilp-protocol-stream/dist/src/packet')
const StreamCrypto = require('ilp-protocol-stream/dist/src/crypto')
const Long = require('long')

function rng (seed) {
  let state = BigInt(seed) || 1n
  return () => {
    state ^= (state << 13n) & 0xffffffffffffffffn
    state ^= state >> 7n
    state ^= (state << 17n) & 0xffffffffffffffffn
    return state
  }
}

function bytes (next, length) {
  const out = Buffer.alloc(length)
  for (let i = 0; i < length; i++) out[i] = Number(next() & 0xffn)
  return out
}

const SEGMENT = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~-'
function address (next) {
  const segments = 1 + Number(next() % 4n)
  let text = ['g', 'test', 'example', 'private'][Number(next() % 4n)]
  for (let i = 0; i < segments; i++) {
    let segment = ''
    const length = 1 + Number(next() % 12n)
    for (let j = 0; j < length; j++) segment += SEGMENT[Number(next() % BigInt(SEGMENT.length))]
    text += '.' + segment
  }
  return text
}

const AMOUNTS = ['0', '1', '255', '4294967296', '9007199254740993', '18446744073709551615']
function amount (next) {
  const pick = next() % 8n
  return pick < 6n ? AMOUNTS[Number(pick)] : (next() % 18446744073709551615n).toString()
}

const DATA_SIZES = [0, 1, 127, 128, 255, 256, 1000, 32767]
function data (next) {
  return bytes(next, DATA_SIZES[Number(next() % BigInt(DATA_SIZES.length))])
}

function expiry (next) {
  return new Date(1500000000000 + Number(next() % 2000000000000n))
}

const CODES = ['F00', 'F01', 'F02', 'F05', 'F08', 'F99', 'T00', 'T04', 'T05', 'R00', 'R02']

function ilpVectors (next, count) {
  const vectors = []
  for (let i = 0; i < count; i++) {
    const prepare = { amount: amount(next), expiresAt: expiry(next), executionCondition: bytes(next, 32), destination: address(next), data: data(next) }
    vectors.push({ kind: 'prepare', hex: IlpPacket.serializeIlpPrepare(prepare).toString('hex'), amount: prepare.amount, expiresAt: prepare.expiresAt.toISOString(), condition: prepare.executionCondition.toString('hex'), destination: prepare.destination, data: prepare.data.toString('hex') })
    const fulfill = { fulfillment: bytes(next, 32), data: data(next) }
    vectors.push({ kind: 'fulfill', hex: IlpPacket.serializeIlpFulfill(fulfill).toString('hex'), fulfillment: fulfill.fulfillment.toString('hex'), data: fulfill.data.toString('hex') })
    const code = CODES[Number(next() % BigInt(CODES.length))]
    const reject = { code, triggeredBy: next() % 5n === 0n ? '' : address(next), message: 'message ' + i, data: code === 'F08' ? Buffer.from('00000000000000ff000000000000ffff', 'hex') : data(next) }
    vectors.push({ kind: 'reject', hex: IlpPacket.serializeIlpReject(reject).toString('hex'), code, triggeredBy: reject.triggeredBy, message: reject.message, data: reject.data.toString('hex') })
  }
  return vectors
}

function streamFrames (next) {
  const F = StreamPacket
  const long = () => Long.fromString(amount(next), true)
  return [
    new F.ConnectionNewAddressFrame(address(next)),
    new F.ConnectionAssetDetailsFrame('XRP', 9),
    new F.ConnectionMaxDataFrame(long()),
    new F.ConnectionMaxStreamIdFrame(Long.fromNumber(20, true)),
    new F.StreamMoneyFrame(Long.fromNumber(1, true), long()),
    new F.StreamMaxMoneyFrame(Long.fromNumber(1, true), long(), long()),
    new F.StreamMoneyBlockedFrame(Long.fromNumber(3, true), long(), long()),
    new F.StreamDataFrame(Long.fromNumber(1, true), long(), bytes(next, Number(next() % 300n))),
    new F.StreamMaxDataFrame(Long.fromNumber(1, true), long()),
    new F.StreamDataBlockedFrame(Long.fromNumber(1, true), long()),
    new F.StreamCloseFrame(Long.fromNumber(5, true), 2, 'closing'),
    new F.StreamReceiptFrame(Long.fromNumber(1, true), bytes(next, 58)),
    new F.ConnectionCloseFrame(1, '')
  ].filter(() => next() % 3n !== 0n)
}

async function streamVectors (next, count) {
  const vectors = []
  for (let i = 0; i < count; i++) {
    const secret = bytes(next, 32)
    const type = [12, 13, 14][i % 3]
    const packet = new StreamPacket.Packet(Long.fromString(amount(next), true), type, Long.fromString(amount(next), true), streamFrames(next))
    const encryptionKey = await StreamCrypto.generatePskEncryptionKey(secret)
    const fulfillmentKey = await StreamCrypto.generateFulfillmentKey(secret)
    const encrypted = await packet.serializeAndEncrypt(encryptionKey)
    const fulfillment = await StreamCrypto.generateFulfillment(fulfillmentKey, encrypted)
    vectors.push({ kind: 'stream', secret: secret.toString('hex'), data: encrypted.toString('hex'), plaintext: packet._serialize().toString('hex'), fulfillment: fulfillment.toString('hex'), sequence: packet.sequence.toString(), prepareAmount: packet.prepareAmount.toString(), frameCount: packet.frames.length })
  }
  return vectors
}

function mismatch (vector, field, ours, theirs) {
  return `${vector.kind} ${vector.hex || vector.data}: ${field} is ${JSON.stringify(theirs)} in JS, ${JSON.stringify(ours)} in Riptide`
}

async function check (vectors) {
  const problems = []
  for (const v of vectors) {
    try {
      if (v.kind === 'prepare') {
        const p = IlpPacket.deserializeIlpPrepare(Buffer.from(v.hex, 'hex'))
        const theirs = { amount: p.amount, expiresAt: p.expiresAt.toISOString(), condition: p.executionCondition.toString('hex'), destination: p.destination, data: p.data.toString('hex') }
        for (const key of Object.keys(theirs)) if (theirs[key] !== v[key]) problems.push(mismatch(v, key, v[key], theirs[key]))
      } else if (v.kind === 'fulfill') {
        const p = IlpPacket.deserializeIlpFulfill(Buffer.from(v.hex, 'hex'))
        if (p.fulfillment.toString('hex') !== v.fulfillment) problems.push(mismatch(v, 'fulfillment', v.fulfillment, p.fulfillment.toString('hex')))
        if (p.data.toString('hex') !== v.data) problems.push(mismatch(v, 'data', v.data, p.data.toString('hex')))
      } else if (v.kind === 'reject') {
        const p = IlpPacket.deserializeIlpReject(Buffer.from(v.hex, 'hex'))
        const theirs = { code: p.code, triggeredBy: p.triggeredBy, message: p.message, data: p.data.toString('hex') }
        for (const key of Object.keys(theirs)) if (theirs[key] !== v[key]) problems.push(mismatch(v, key, v[key], theirs[key]))
      } else if (v.kind === 'stream') {
        const key = await StreamCrypto.generatePskEncryptionKey(Buffer.from(v.secret, 'hex'))
        const p = await StreamPacket.Packet.decryptAndDeserialize(key, Buffer.from(v.data, 'hex'))
        if (p._serialize().toString('hex') !== v.plaintext) problems.push(mismatch(v, 'plaintext', v.plaintext, p._serialize().toString('hex')))
        if (p.sequence.toString() !== v.sequence) problems.push(mismatch(v, 'sequence', v.sequence, p.sequence.toString()))
        const fulfillmentKey = await StreamCrypto.generateFulfillmentKey(Buffer.from(v.secret, 'hex'))
        const fulfillment = await StreamCrypto.generateFulfillment(fulfillmentKey, Buffer.from(v.data, 'hex'))
        if (fulfillment.toString('hex') !== v.fulfillment) problems.push(mismatch(v, 'fulfillment', v.fulfillment, fulfillment.toString('hex')))
      } else {
        problems.push(`unknown vector kind ${v.kind}`)
      }
    } catch (error) {
      problems.push(`${v.kind} ${v.hex || v.data}: JS could not decode it: ${error.message}`)
    }
  }
  return problems
}

async function main () {
  const [mode, seedText] = process.argv.slice(2)
  if (mode === 'generate') {
    const next = rng(seedText || '1')
    const vectors = ilpVectors(next, 40).concat(await streamVectors(next, 30))
    process.stdout.write(JSON.stringify(vectors))
  } else if (mode === 'check') {
    let input = ''
    for await (const chunk of process.stdin) input += chunk
    const vectors = JSON.parse(input)
    const problems = await check(vectors)
    for (const problem of problems) console.error(problem)
    console.log(`checked ${vectors.length} vectors, ${problems.length} mismatches`)
    process.exit(problems.length === 0 ? 0 : 1)
  } else {
    console.error('usage: node interop.js generate <seed> | check')
    process.exit(2)
  }
}

main().catch(error => { console.error(error); process.exit(1) })
