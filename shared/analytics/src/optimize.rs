//! Nelder–Mead minimisation (Nelder & Mead 1965), the derivative-free
//! simplex method: enough for a four-parameter likelihood.

/// The point of `f`'s least value found from `start` (each coordinate
/// stepped by `step` for the first simplex), restarted from its own result
/// until a restart finds nothing better.
pub fn minimize<const N: usize>(f: impl Fn(&[f64; N]) -> f64, start: [f64; N], step: f64) -> ([f64; N], f64) {
    let mut best = (start, f(&start));
    for _ in 0..20 {
        let next = simplex(&f, best.0, step);
        let improved = next.1 < best.1 - 1e-12 * (1.0 + best.1.abs());
        best = if next.1 <= best.1 { next } else { best };
        if !improved {
            break;
        }
    }
    best
}

fn simplex<const N: usize>(f: &impl Fn(&[f64; N]) -> f64, start: [f64; N], step: f64) -> ([f64; N], f64) {
    let mut points: Vec<([f64; N], f64)> = (0..=N)
        .map(|i| {
            let mut p = start;
            if i > 0 {
                p[i - 1] += step;
            }
            (p, f(&p))
        })
        .collect();
    for _ in 0..20_000 {
        points.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (low, high) = (points[0].1, points[N].1);
        let spread = points.iter().map(|(p, _)| distance(p, &points[0].0)).fold(0.0, f64::max);
        if (high - low).abs() <= 1e-12 * (1.0 + low.abs()) && spread < 1e-9 {
            break;
        }
        let mut centroid = [0.0; N];
        for (p, _) in &points[..N] {
            for (c, x) in centroid.iter_mut().zip(p) {
                *c += x / N as f64;
            }
        }
        let along = |t: f64| -> [f64; N] {
            let mut p = centroid;
            for (i, c) in p.iter_mut().enumerate() {
                *c += t * (points[N].0[i] - centroid[i]);
            }
            p
        };
        let reflected = along(-1.0);
        let fr = f(&reflected);
        if fr < points[0].1 {
            let expanded = along(-2.0);
            let fe = f(&expanded);
            points[N] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < points[N - 1].1 {
            points[N] = (reflected, fr);
        } else {
            let contracted = if fr < high { along(-0.5) } else { along(0.5) };
            let fc = f(&contracted);
            if fc < fr.min(high) {
                points[N] = (contracted, fc);
            } else {
                // Shrink towards the best point.
                let best = points[0].0;
                for (p, v) in points.iter_mut().skip(1) {
                    for (x, b) in p.iter_mut().zip(&best) {
                        *x = b + 0.5 * (*x - b);
                    }
                    *v = f(p);
                }
            }
        }
    }
    points.sort_by(|a, b| a.1.total_cmp(&b.1));
    points.swap_remove(0)
}

fn distance<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_rosenbrock_s_valley() {
        let rosenbrock = |p: &[f64; 2]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2);
        let (p, v) = minimize(rosenbrock, [-1.2, 1.0], 0.5);
        assert!((p[0] - 1.0).abs() < 1e-5 && (p[1] - 1.0).abs() < 1e-5, "{p:?}");
        assert!(v < 1e-10);
    }

    #[test]
    fn finds_the_centre_of_a_four_dimensional_bowl() {
        let bowl = |p: &[f64; 4]| p.iter().enumerate().map(|(i, x)| (x - i as f64).powi(2)).sum::<f64>();
        let (p, _) = minimize(bowl, [5.0; 4], 1.0);
        for (i, x) in p.iter().enumerate() {
            assert!((x - i as f64).abs() < 1e-6, "{p:?}");
        }
    }
}
