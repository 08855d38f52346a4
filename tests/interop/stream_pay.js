// A STREAM receiver or sender from ilp-protocol-stream, peered with a connector over
// ilp-plugin-http, for Riptide's end-to-end tests.
//   node stream_pay.js receiver <listenPort> <connectorUrl> <tokenIn> <tokenOut> <expect> <seconds>
//     prints {"destination","secret"} (secret base64) on its first line, then
//     {"received": "..."} once `expect` units arrived or the time ran out, and
//     keeps serving until it is stopped
//   node stream_pay.js sender <listenPort> <connectorUrl> <tokenIn> <tokenOut> <destination> <secret> <amount>
//     prints {"sent": "...", "delivered": "..."} after paying `amount`
'use strict'
const PluginHttp = require('ilp-plugin-http')
const { createServer, createConnection } = require('ilp-protocol-stream')
const crypto = require('crypto')

function plugin (listenPort, connectorUrl, tokenIn, tokenOut) {
  return new PluginHttp({
    incoming: { port: Number(listenPort), staticToken: tokenIn },
    outgoing: { url: connectorUrl, staticToken: tokenOut, name: 'js' }
  })
}

function print (object) {
  process.stdout.write(JSON.stringify(object) + '\n')
}

async function receiver (listenPort, connectorUrl, tokenIn, tokenOut, expect, seconds) {
  const server = await createServer({ plugin: plugin(listenPort, connectorUrl, tokenIn, tokenOut), serverSecret: crypto.randomBytes(32) })
  let received = 0n
  let finish
  const done = new Promise(resolve => { finish = resolve })
  server.on('connection', connection => {
    connection.on('stream', stream => {
      stream.setReceiveMax('18446744073709551615')
      stream.on('money', amount => {
        received += BigInt(amount)
        if (received >= BigInt(expect)) finish()
      })
    })
  })
  const { destinationAccount, sharedSecret } = server.generateAddressAndSecret()
  // A second connection's credentials, for a test that pays with a second client:
  // a client that ends its connection closes it at the server for good.
  const second = server.generateAddressAndSecret()
  print({
    destination: destinationAccount,
    secret: sharedSecret.toString('base64'),
    second_destination: second.destinationAccount,
    second_secret: second.sharedSecret.toString('base64')
  })
  const timer = setTimeout(finish, Number(seconds) * 1000)
  await done
  clearTimeout(timer)
  // Stay up: the last Fulfill may still be on its way back through the connector.
  print({ received: received.toString() })
}

async function sender (listenPort, connectorUrl, tokenIn, tokenOut, destination, secret, amount) {
  const connection = await createConnection({
    plugin: plugin(listenPort, connectorUrl, tokenIn, tokenOut),
    destinationAccount: destination,
    sharedSecret: Buffer.from(secret, 'base64'),
    slippage: 0.05
  })
  const stream = connection.createStream()
  await stream.sendTotal(amount, { timeout: 20000 })
  print({ sent: stream.totalSent, delivered: connection.totalDelivered, address: connection.sourceAccount })
  await connection.end()
  process.exit(0)
}

const [mode, ...args] = process.argv.slice(2)
const run = mode === 'receiver' ? receiver : mode === 'sender' ? sender : null
if (!run) {
  console.error('usage: node stream_pay.js receiver|sender ...')
  process.exit(2)
}
run(...args).catch(error => {
  console.error(error && error.stack ? error.stack : error)
  process.exit(1)
})
