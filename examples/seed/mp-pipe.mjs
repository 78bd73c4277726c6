// The seed's multiprocessing Pipe example: parent and child talk over a pipe.
// Python:
//
//   from multiprocessing import Process, Pipe
//   def f(conn):
//       conn.send([42, None, 'hello'])
//       print('child got', conn.recv(), flush=True)
//       conn.close()
//   if __name__ == '__main__':
//       parent_conn, child_conn = Pipe()
//       p = Process(target=f, args=(child_conn,))
//       p.start()
//       print('parent got', parent_conn.recv())
//       parent_conn.send('thanks')
//       p.join()
import { Pipe, Process, currentProcess } from '../../dist/index.js';

export default async function f(conn) {
  await conn.send([42, null, 'hello']);
  console.log('child got', await conn.recv());
  conn.close();
}

if (currentProcess().name === 'MainProcess') {
  const [parentConn, childConn] = Pipe();
  const p = new Process(import.meta.url, { args: [childConn] });
  p.start();
  console.log('parent got', await parentConn.recv());
  await parentConn.send('thanks');
  await p.join();
  parentConn.close();
  childConn.close();
}
