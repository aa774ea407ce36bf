//! Correctness against the real all-MiniLM-L6-v2 weights.
//!
//! Needs `HOOSH_TEST_MINILM_DIR` pointing at the model directory; without it
//! every test prints a skip notice and passes.

use std::path::PathBuf;
use std::sync::OnceLock;

use hoosh_embed::Embedder;

const FOOD: &str = "A man is eating food.";
const BREAD: &str = "A man is eating a piece of bread.";
const HORSE: &str = "A man is riding a horse.";
const MOVIE_AWESOME: &str = "The new movie is awesome.";
const MOVIE_GREAT: &str = "The new movie is so great.";

/// One embedder shared by every test in this file (loading takes a while in
/// debug builds). `None` when the model is not available.
fn embedder() -> Option<&'static Embedder> {
    static EMBEDDER: OnceLock<Option<Embedder>> = OnceLock::new();
    let loaded = EMBEDDER.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os("HOOSH_TEST_MINILM_DIR")?);
        if !dir.join("model.safetensors").is_file() {
            return None;
        }
        match Embedder::load(&dir) {
            Ok(embedder) => Some(embedder),
            Err(err) => panic!("cannot load the model in {}: {err}", dir.display()),
        }
    });
    if loaded.is_none() {
        eprintln!("skipping: set HOOSH_TEST_MINILM_DIR to an all-MiniLM-L6-v2 directory");
    }
    loaded.as_ref()
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // The vectors are unit length, so the dot product is the cosine.
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn shape_and_limits() {
    let Some(embedder) = embedder() else { return };
    assert_eq!(embedder.dims(), 384);
    assert_eq!(embedder.max_seq_len(), 256);
}

#[test]
fn known_similarities_match_sentence_transformers() {
    let Some(embedder) = embedder() else { return };
    let out = embedder.embed(&strings(&[FOOD, BREAD, HORSE, MOVIE_AWESOME, MOVIE_GREAT])).unwrap();
    let v = &out.vectors;
    let food_bread = cosine(&v[0], &v[1]);
    let food_horse = cosine(&v[0], &v[2]);
    let movies = cosine(&v[3], &v[4]);
    eprintln!("cos(food, bread) = {food_bread:.6}");
    eprintln!("cos(food, horse) = {food_horse:.6}");
    eprintln!("cos(awesome, great) = {movies:.6}");
    assert_eq!(format!("{food_bread:.4}"), "0.7553");
    assert!((food_horse - 0.2474).abs() < 5e-4, "{food_horse}");
    assert!((movies - 0.9007).abs() < 5e-4, "{movies}");
}

#[test]
fn every_vector_has_unit_norm() {
    let Some(embedder) = embedder() else { return };
    let texts = strings(&[FOOD, "", "x", &"word ".repeat(20), MOVIE_GREAT]);
    let out = embedder.embed(&texts).unwrap();
    assert_eq!(out.vectors.len(), texts.len());
    for vector in &out.vectors {
        assert_eq!(vector.len(), 384);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn padding_does_not_leak_into_short_texts() {
    let Some(embedder) = embedder() else { return };
    let long = "The committee reviewed the quarterly figures in great detail, \
                comparing every region against the forecast and the previous year, \
                before agreeing on a revised budget for the coming months."
        .repeat(2);
    let alone = embedder.embed(&strings(&[FOOD])).unwrap();
    let batched = embedder.embed(&strings(&[FOOD, &long])).unwrap();
    let diff = max_abs_diff(&alone.vectors[0], &batched.vectors[0]);
    eprintln!("max |alone - batched| = {diff:e}");
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn large_batches_keep_input_order() {
    let Some(embedder) = embedder() else { return };
    // More than one internal chunk, with lengths in reverse order so the
    // length sort really reorders them.
    let texts: Vec<String> = (0..40).rev().map(|i| format!("sentence {i} {}", "more ".repeat(i / 8))).collect();
    let out = embedder.embed(&texts).unwrap();
    assert_eq!(out.vectors.len(), 40);
    let mut expected_tokens = 0;
    for text in &texts {
        expected_tokens += embedder.count_tokens(text).unwrap();
    }
    assert_eq!(out.prompt_tokens, expected_tokens);
    for i in [0, 17, 39] {
        let single = embedder.embed(&texts[i..=i]).unwrap();
        let diff = max_abs_diff(&single.vectors[0], &out.vectors[i]);
        assert!(diff < 1e-5, "text {i}: {diff}");
    }
}

#[test]
fn long_input_is_truncated_not_rejected() {
    let Some(embedder) = embedder() else { return };
    let long = "lorem ".repeat(1000);
    let out = embedder.embed(std::slice::from_ref(&long)).unwrap();
    assert_eq!(out.vectors.len(), 1);
    assert!(out.prompt_tokens <= 256, "{}", out.prompt_tokens);
    assert_eq!(embedder.count_tokens(&long).unwrap(), out.prompt_tokens);
}

#[test]
fn token_count_is_real_tokens_only() {
    let Some(embedder) = embedder() else { return };
    // [CLS] a man is eating food . [SEP]
    assert_eq!(embedder.count_tokens(FOOD).unwrap(), 8);
    // Batched with a longer text, FOOD is padded but still costs 8.
    let out = embedder.embed(&strings(&[FOOD, BREAD])).unwrap();
    assert_eq!(out.prompt_tokens, 8 + embedder.count_tokens(BREAD).unwrap());
}

#[test]
fn empty_batch_is_empty() {
    let Some(embedder) = embedder() else { return };
    let out = embedder.embed(&[]).unwrap();
    assert!(out.vectors.is_empty());
    assert_eq!(out.prompt_tokens, 0);
}
