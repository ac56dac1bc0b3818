//! Prints, one line each, the endpoint every AWS service nudge calls
//! resolves for each region given as an argument, with and without FIPS and
//! dual-stack. The partition-table test (tests/partitions.rs) runs it with
//! and without `SMITHY_CLIENT_SDK_CUSTOM_PARTITION` and compares the lines.

macro_rules! resolve {
    ($service:ident, $region:expr, $fips:expr, $dual:expr) => {{
        use $service::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        match Params::builder().region($region).use_fips($fips).use_dual_stack($dual).build() {
            Ok(params) => match ResolveEndpoint::resolve_endpoint(&DefaultResolver::new(), &params).await {
                Ok(endpoint) => endpoint.url().to_owned(),
                Err(e) => format!("error: {e}"),
            },
            Err(e) => format!("invalid parameters: {e}"),
        }
    }};
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for region in std::env::args().skip(1) {
        for (fips, dual) in [(false, false), (true, false), (false, true), (true, true)] {
            let endpoints = [
                resolve!(aws_sdk_dynamodb, &region, fips, dual),
                resolve!(aws_sdk_scheduler, &region, fips, dual),
                resolve!(aws_sdk_sesv2, &region, fips, dual),
                resolve!(aws_sdk_eventbridge, &region, fips, dual),
                resolve!(aws_sdk_ssm, &region, fips, dual),
            ];
            if writeln!(out, "{region} fips={fips} dual-stack={dual}: {}", endpoints.join(" ")).is_err() {
                return; // a closed pipe: nobody is reading
            }
        }
    }
}
