//! The reference for `bench/artifacts.sh`: an `aws s3 cp`-style raw transfer of a file to and
//! from the same store (multipart upload in 8 MiB parts, several in flight; one streamed GET),
//! with no server, no encryption and no hashing. Usage: `raw_s3 STORE_URL FILE`.

use std::time::Instant;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, file] = args.as_slice() else {
        eprintln!("usage: raw_s3 STORE_URL FILE");
        std::process::exit(2);
    };
    let store =
        suanli_server::artifacts::backend::open(Some(url), std::path::Path::new("/tmp")).unwrap();
    let key = Path::from(format!("raw-bench-{}", std::process::id()));
    let started = Instant::now();
    let mut input = tokio::fs::File::open(file).await.unwrap();
    let mut writer =
        WriteMultipart::new_with_chunk_size(store.put_multipart(&key).await.unwrap(), 8 << 20);
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = input.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        bytes += n as u64;
        writer.wait_for_capacity(8).await.unwrap();
        writer.write(&buffer[..n]);
    }
    writer.finish().await.unwrap();
    let put_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut stream = store.get(&key).await.unwrap().into_stream();
    let mut output = tokio::fs::File::create(format!("{file}.raw"))
        .await
        .unwrap();
    while let Some(piece) = stream.next().await {
        output.write_all(&piece.unwrap()).await.unwrap();
    }
    output.flush().await.unwrap();
    let get_s = started.elapsed().as_secs_f64();
    store.delete(&key).await.unwrap();
    let mb = bytes as f64 / (1 << 20) as f64;
    println!("raw PUT:     {put_s:.1} s, {:.0} MB/s", mb / put_s);
    println!("raw GET:     {get_s:.1} s, {:.0} MB/s", mb / get_s);
}
