// A charge point written with the npm package ocpp-rpc (an OCPP-J implementation independent of
// the engine's): boot, status, a transaction with the register every minute, stop. Prints one
// JSON line with the engine's answers. Arguments: endpoint, charge point id, password, the
// transaction's first minute (ISO 8601), minutes.
'use strict';
const { RPCClient } = require('ocpp-rpc');

async function main() {
    const [endpoint, identity, password, firstMinute, minutesText] = process.argv.slice(2);
    const minutes = Number(minutesText);
    const start = Date.parse(firstMinute);
    const at = (minute) => new Date(start + minute * 60000).toISOString();
    const client = new RPCClient({
        endpoint,
        identity,
        password,
        protocols: ['ocpp1.6'],
        strictMode: true, // the package checks every call and answer against OCPP 1.6's schemas
        reconnect: false,
    });
    const answers = {};
    await client.connect();
    answers.protocol = client.protocol;
    answers.boot = await client.call('BootNotification', {
        chargePointVendor: 'ocpp-rpc', chargePointModel: 'node',
    });
    answers.heartbeat = await client.call('Heartbeat', {});
    await client.call('StatusNotification', {
        connectorId: 2, errorCode: 'NoError', status: 'Charging', timestamp: at(0),
    });
    const started = await client.call('StartTransaction', {
        connectorId: 2, idTag: 'NODE', meterStart: 20000, timestamp: at(0),
    });
    answers.start = started;
    for (let minute = 1; minute <= minutes; minute++) {
        await client.call('MeterValues', {
            connectorId: 2,
            transactionId: started.transactionId,
            meterValue: [{
                timestamp: at(minute),
                sampledValue: [
                    { value: String(20 + 0.25 * minute), measurand: 'Energy.Active.Import.Register', unit: 'kWh' },
                    { value: '400.0', measurand: 'Voltage', phase: 'L1-L2', unit: 'V' },
                    { value: '232.0', measurand: 'Voltage', phase: 'L1-N', unit: 'V' },
                    { value: '11000', measurand: 'Power.Active.Import', unit: 'W' },
                ],
            }],
        });
    }
    answers.stop = await client.call('StopTransaction', {
        transactionId: started.transactionId,
        meterStop: 20000 + 250 * (minutes + 1),
        timestamp: at(minutes + 1),
    });
    await client.close();
    console.log(JSON.stringify(answers));
}

main().catch((error) => {
    console.error(error && error.stack ? error.stack : String(error));
    process.exit(1);
});
