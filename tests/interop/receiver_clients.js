// Senders that pay Riptide's own STREAM receiver, peered with riptide over
// ilp-plugin-http, for its end-to-end tests. Each prints one JSON line and exits.
//   node receiver_clients.js spsp <listenPort> <connectorUrl> <tokenIn> <tokenOut> <spspUrl> <amount> [<nonceB64> <secretB64>]
//     queries SPSP (with receipt headers when given), pays with ilp-protocol-stream:
//     {"destination","sent","delivered","receipt"(base64 or null)}
//   node receiver_clients.js stream <listenPort> <connectorUrl> <tokenIn> <tokenOut> <destination> <secretB64> <amount> <timeoutMs>
//     pays credentials with ilp-protocol-stream, and reports a failure (also one to
//     set the connection up) instead of throwing: {"sent","delivered","error","elapsedMs"}
//   node receiver_clients.js pay <listenPort> <connectorUrl> <tokenIn> <tokenOut> <spspUrl|-> <destination|-> <secretB64|-> <amountToDeliver> <assetCode> <assetScale> [<pricesJson>]
//     quotes and pays with @interledger/pay: {"sent","delivered","error","receipt","elapsedMs"};
//     with RIPTIDE_MAP_HOST=name=host:port, http://name/... goes to host:port
'use strict'
const PluginHttp = require('ilp-plugin-http')
const { createConnection } = require('ilp-protocol-stream')
const Pay = require('@interledger/pay')

function plugin (listenPort, connectorUrl, tokenIn, tokenOut) {
  return new PluginHttp({
    incoming: { port: Number(listenPort), staticToken: tokenIn },
    outgoing: { url: connectorUrl, staticToken: tokenOut, name: 'js' }
  })
}

function print (object) {
  process.stdout.write(JSON.stringify(object) + '\n')
}

function message (e) {
  return String(e && e.message ? e.message : e)
}

// RIPTIDE_MAP_HOST="name=127.0.0.1:port" sends plain-HTTP requests for `name`
// (port 80) to that address instead, as a proxy in front of Riptide's public port
// would: @interledger/pay refuses payment pointer URLs with an explicit port.
function mapHost () {
  const mapping = process.env.RIPTIDE_MAP_HOST
  if (!mapping) return
  const [name, target] = mapping.split('=')
  const [host, port] = target.split(':')
  const http = require('http')
  const net = require('net')
  const original = http.globalAgent.createConnection.bind(http.globalAgent)
  http.globalAgent.createConnection = (options, callback) =>
    options.host === name || options.hostname === name
      ? net.createConnection({ host, port: Number(port) }, callback)
      : original(options, callback)
}

async function streamPay (thePlugin, destination, secret, amount, timeoutMs) {
  const started = Date.now()
  let connection
  try {
    connection = await createConnection({
      plugin: thePlugin,
      destinationAccount: destination,
      sharedSecret: secret,
      slippage: 0.05
    })
  } catch (e) {
    // The connection could not even be set up (its test packets all failed).
    return { sent: '0', delivered: '0', receipt: null, error: 'connect: ' + message(e), elapsedMs: Date.now() - started }
  }
  const stream = connection.createStream()
  let error = null
  try {
    await stream.sendTotal(amount, { timeout: timeoutMs })
  } catch (e) {
    error = message(e)
  }
  const result = {
    sent: stream.totalSent,
    delivered: connection.totalDelivered,
    receipt: stream.receipt ? stream.receipt.toString('base64') : null,
    error,
    elapsedMs: Date.now() - started
  }
  await Promise.race([connection.destroy(), new Promise(resolve => setTimeout(resolve, 2000))])
  return result
}

async function spsp (listenPort, connectorUrl, tokenIn, tokenOut, spspUrl, amount, nonce, secret) {
  const headers = { Accept: 'application/spsp4+json, application/spsp+json' }
  if (nonce && secret) {
    headers['Receipt-Nonce'] = nonce
    headers['Receipt-Secret'] = secret
  }
  const response = await fetch(spspUrl, { headers })
  const details = await response.json()
  const result = await streamPay(
    plugin(listenPort, connectorUrl, tokenIn, tokenOut),
    details.destination_account,
    Buffer.from(details.shared_secret, 'base64'),
    amount,
    20000
  )
  print({ destination: details.destination_account, receiptsEnabled: details.receipts_enabled, ...result })
}

async function stream (listenPort, connectorUrl, tokenIn, tokenOut, destination, secret, amount, timeoutMs) {
  const result = await streamPay(
    plugin(listenPort, connectorUrl, tokenIn, tokenOut),
    destination,
    Buffer.from(secret, 'base64'),
    amount,
    Number(timeoutMs)
  )
  print(result)
}

async function payWithPay (listenPort, connectorUrl, tokenIn, tokenOut, spspUrl, destination, secret, amountToDeliver, code, scale, prices) {
  const started = Date.now()
  mapHost()
  const thePlugin = plugin(listenPort, connectorUrl, tokenIn, tokenOut)
  await thePlugin.connect()
  const setup = spspUrl !== '-'
    ? { plugin: thePlugin, destinationAccount: spspUrl }
    : { plugin: thePlugin, destinationAddress: destination, sharedSecret: Buffer.from(secret, 'base64') }
  try {
    const destinationDetails = await Pay.setupPayment(setup)
    const quote = await Pay.startQuote({
      plugin: thePlugin,
      destination: destinationDetails,
      amountToDeliver,
      sourceAsset: { code, scale: Number(scale) },
      prices: prices ? JSON.parse(prices) : undefined,
      slippage: 0.05
    })
    const progress = await Pay.pay({ plugin: thePlugin, destination: destinationDetails, quote })
    await Pay.closeConnection(thePlugin, destinationDetails).catch(() => {})
    print({
      sent: progress.amountSent.toString(),
      delivered: progress.amountDelivered.toString(),
      error: progress.error || null,
      receipt: progress.streamReceipt ? Buffer.from(progress.streamReceipt).toString('base64') : null,
      destinationAsset: destinationDetails.destinationAsset,
      maxPacketAmount: quote.maxPacketAmount.toString(),
      elapsedMs: Date.now() - started
    })
  } catch (e) {
    print({ sent: '0', delivered: '0', error: String(e), elapsedMs: Date.now() - started })
  }
}

async function main () {
  const [mode, ...args] = process.argv.slice(2)
  if (mode === 'spsp') await spsp(...args)
  else if (mode === 'stream') await stream(...args)
  else if (mode === 'pay') await payWithPay(...args)
  else throw new Error('mode must be spsp, stream or pay')
  process.exit(0)
}

main().catch(error => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + '\n')
  process.exit(1)
})
