//! Renders per second of the example cart reminder with 5 cart lines and 4
//! recommendations, one thread (`make bench`). MJML is compiled once, when the
//! templates are loaded; the loop measures what each send costs.

use std::time::Instant;

use nudge_content::{CartLine, ProductCard, TemplateSource, Templates, sample_context};

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/templates");
    let mjml = std::fs::read_to_string(format!("{dir}/cart-reminder.mjml")).expect("example template");
    let compile_started = Instant::now();
    let templates =
        Templates::compile(vec![TemplateSource { name: "cart-reminder".into(), mjml, text: None }]).expect("compiles");
    let compile = compile_started.elapsed();

    let mut ctx = sample_context();
    if let Some(cart) = ctx.cart.as_mut() {
        cart.lines = (1..=5)
            .map(|i| CartLine {
                product_id: format!("p-{i}"),
                title: format!("Product number {i}"),
                variant: Some("M / Blue".into()),
                quantity: i,
                price: format!("${i}9.00"),
                image: Some(format!("https://cdn.example/p-{i}.jpg")),
                url: Some(format!("https://shop.example/products/p-{i}")),
                low_stock: (i == 2).then_some(2),
            })
            .collect();
    }
    ctx.recommendations = (1..=4)
        .map(|i| ProductCard {
            id: format!("r-{i}"),
            title: Some(format!("Pick {i}")),
            url: Some(format!("https://shop.example/products/r-{i}")),
            price: Some(format!("${i}5.00")),
            rating: Some(4.5),
            review_count: Some(10 * i),
            ..ProductCard::default()
        })
        .collect();

    let n: u32 = std::env::var("BENCH_RENDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut rounds = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..n {
            let r = templates.render("cart-reminder", "Still deciding, {{ first_name }}?", &ctx).expect("renders");
            bytes += r.html.len();
        }
        rounds.push(f64::from(n) / started.elapsed().as_secs_f64());
    }
    rounds.sort_by(f64::total_cmp);
    println!(
        "{{\"renders_per_s_median\": {:.0}, \"rounds\": 5, \"renders_per_round\": {n}, \"mjml_compile_ms\": {:.1}, \"html_bytes\": {}}}",
        rounds[2],
        compile.as_secs_f64() * 1e3,
        bytes / (5 * n as usize)
    );
}
