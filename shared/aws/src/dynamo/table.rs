//! The table itself: keys, indexes and TTL, as `make test` and local runs
//! create it (SAM and Terraform declare the same).

use aws_sdk_dynamodb::Client;
use nudge_app::ports::StoreError;

use super::items::*;

/// Creates the table of docs/architecture.md with both indexes and TTL on `ttl`: for
/// tests and local emulators. Production stacks create it from
/// infra/sam or infra/terraform, with the same keys and indexes.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, TimeToLiveSpecification,
    };
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .map_err(|e| unavailable("schema", e))
    };
    let key_el = |name: &str, t: KeyType| {
        KeySchemaElement::builder().attribute_name(name).key_type(t).build().map_err(|e| unavailable("schema", e))
    };
    let index = |name: &str, hash: &str, range: &str| -> Result<GlobalSecondaryIndex, StoreError> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key_el(hash, KeyType::Hash)?)
            .key_schema(key_el(range, KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
            .build()
            .map_err(|e| unavailable("schema", e))
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("owner", ScalarAttributeType::S)?)
        .attribute_definitions(attr("due_bucket", ScalarAttributeType::S)?)
        .attribute_definitions(attr("next_due", ScalarAttributeType::N)?)
        .key_schema(key_el("pk", KeyType::Hash)?)
        .key_schema(key_el("sk", KeyType::Range)?)
        .global_secondary_indexes(index(BY_OWNER, "owner", "pk")?)
        .global_secondary_indexes(index(BY_DUE, "due_bucket", "next_due")?)
        .send()
        .await
        .map_err(|e| unavailable("create table", e))?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("ttl")
        .enabled(true)
        .build()
        .map_err(|e| unavailable("ttl", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| unavailable("update ttl", e))?;
    Ok(())
}
