//! Edit distance and "did you mean" between names: the one implementation the file decoder, the plan and the embeddable library share.

/// Edit distance where swapping two neighbours counts as one edit (optimal string
/// alignment), since `bd` for `db` is the most common typo of all. Counts chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rolling rows: the transposition looks two rows back.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word` within `limit` edits; among equally close ones the
/// first. Candidates whose length alone rules them out are skipped without computing a
/// distance, which keeps hints fast among thousands of names.
pub fn nearest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> Option<&'a str> {
    let len = word.chars().count();
    candidates
        .into_iter()
        // The edit distance is at least the difference in chars (a char is 1–4 bytes).
        .filter(|c| {
            c.len().abs_diff(word.len()) <= limit * 4 && c.chars().count().abs_diff(len) <= limit
        })
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("bd", "db"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
        assert_eq!(edit_distance("serivce", "service"), 1);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn nearest_respects_the_limit_and_prefers_the_first_of_equals() {
        let names = ["db", "cache", "config"];
        assert_eq!(nearest("confg", names, 1), Some("config"));
        assert_eq!(nearest("bd", names, 1), Some("db"));
        assert_eq!(nearest("zzzzzz", names, 2), None);
        assert_eq!(nearest("ab", ["aa", "bb"], 1), Some("aa"));
    }
}
