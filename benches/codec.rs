//! Hot paths of the protocol core: encoding and decoding the bodies a Direct Push server
//! and fleet handle most (a Ping request, a Status 2 Ping response) and a 50-item Sync
//! response, the largest body of a wake-up.
//!
//! Run: `cargo bench --bench codec`. Criterion reports the time per operation.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use pingfleet::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use pingfleet::eas::commands::sync::{
    Body, Email, SyncCollectionResponse, SyncCommand, SyncResponse,
};
use pingfleet::eas::WbxmlBody;

fn ping_request() -> PingRequest {
    PingRequest {
        heartbeat_interval_s: Some(480),
        folders: vec![PingFolder::new("5", "Email")],
    }
}

fn ping_changes() -> PingResponse {
    PingResponse::Changes {
        folders: vec!["5".into()],
    }
}

fn sync_response(items: usize) -> SyncResponse {
    let commands = (0..items)
        .map(|index| SyncCommand::Add {
            server_id: format!("5:{index}"),
            email: Email {
                to: Some("\"Bob\" <bob@example.com>".into()),
                from: Some("\"Alice\" <alice@example.com>".into()),
                subject: Some(format!("Message number {index}")),
                date_received: Some("2026-11-25T08:00:00.000Z".into()),
                display_to: Some("Bob".into()),
                importance: Some(1),
                read: Some(false),
                body: Some(Body {
                    body_type: 1,
                    estimated_data_size: Some(2048),
                    truncated: Some(true),
                    data: Some("Hello Bob, here are the figures you asked for.".repeat(4)),
                }),
                message_class: Some("IPM.Note".into()),
                conversation_id: Some(vec![0x5A; 16]),
                ..Email::default()
            },
        })
        .collect();
    SyncResponse {
        status: None,
        collections: vec![SyncCollectionResponse {
            sync_key: "42".into(),
            collection_id: "5".into(),
            status: 1,
            more_available: true,
            commands,
        }],
    }
}

fn bench_body<T: WbxmlBody>(c: &mut Criterion, name: &str, model: T) {
    let bytes = model.encode();
    println!("{name}: {} bytes", bytes.len());
    let mut group = c.benchmark_group(name);
    group.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| black_box(&model).encode()));
    group.bench_function("decode", |b| {
        b.iter(|| T::decode(black_box(&bytes)).expect("valid body"))
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_body(c, "ping_request", ping_request());
    bench_body(c, "ping_response_status2", ping_changes());
    bench_body(c, "sync_response_50_items", sync_response(50));
}

criterion_group!(benches, codec);
criterion_main!(benches);
