// One-shot: make the MongoDB node a replica set (change streams, transactions, and
// majority writes need one), then wait until it is the writable primary. Idempotent.
const name = process.env.MONGO_REPLICA_SET;
const host = process.env.MONGO_HOST;
try {
  rs.status();
  print(`replica set ${name} already initiated`);
} catch (error) {
  rs.initiate({ _id: name, members: [{ _id: 0, host: host }] });
  print(`replica set ${name} initiated with ${host}`);
}
while (!db.hello().isWritablePrimary) {
  sleep(500);
}
print(`${host} is the primary of ${name}`);
