// Aedes on a free loopback port, for the benchmarks: its defaults (in-memory
// persistence and emitter), one TCP listener. Prints "listening on 127.0.0.1:PORT".

import net from "node:net";
import { Aedes } from "aedes";

const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stderr.write(`aedes listening on 127.0.0.1:${server.address().port}\n`);
});
const stop = () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
