//! Share recovery: re-issue the Shamir share of a lost custodian, at its own x coordinate,
//! from `k` surviving custodians, without any party but the new custodian ever holding the
//! new share and without anyone holding the secret.
//!
//! The shares are those of [`crate::shamir`]: byte vectors, every byte the value of its own
//! polynomial `f` of degree `k - 1` over GF(2^8). Helpers `S` (exactly `k` x coordinates,
//! public) hold `y_i = f(x_i)`; the target `x_j ∉ S` wants `y_j = f(x_j)`.
//!
//! 1. [`contribute`]: helper `i` computes its Lagrange part `s_i = λ_i(x_j) · y_i` (λ over
//!    `S`, at `x_j`), splits it into `k` summands — `k - 1` fresh random ones for the other
//!    helpers and `d_{i→i} = s_i + Σ` of those, which it keeps — and sends `d_{i→i'}` to
//!    helper `i'`.
//! 2. [`relay`]: helper `i'` adds up the `k` pieces addressed to it (its own included):
//!    `σ_{i'} = Σ_i d_{i→i'}`, and sends `σ_{i'}` to the target.
//! 3. [`assemble`]: the target adds up the `k` σ: `Σ σ = Σ_i s_i = f(x_j) = y_j`.
//!
//! Every piece a helper sends is fresh randomness; every σ contains a fresh random piece
//! from each other helper, so one σ, one piece, or the whole view of any `k - 1` helpers
//! (their shares, the pieces they received, their σ) is independent of `y_j` and of the
//! missing helper's share. The target sees `k` σ that are uniform but for their sum, i.e.
//! it learns `y_j` and nothing else. As with any `k` custodians, the target together with
//! `k - 1` helpers can rebuild the secret: recovery adds no way to do it with fewer.
//!
//! The protocol is only as honest as its helpers: a wrong piece or σ gives the target a
//! wrong share, silently. Where a digest of the share is published (the dispersal
//! manifest's `key_share_digests`), the target checks its result against it
//! ([`crate::dispersal::check_key_share`]). Secret bytes are only multiplied by the public
//! λ (constant-time kernels of [`crate::gf256`]) and XORed; every secret buffer is
//! zeroized on drop and none is printed by `Debug`.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::gf256::{self, Backend, MulBy};
use crate::shamir::Share;
use crate::{Error, Result, Threshold};

/// Who helps whom: the `k` helpers' x coordinates (sorted, distinct) and the target's.
///
/// Public; every party of one recovery must use the same plan (in the node protocol the
/// admin signs it). Serializes as `{k, n, helpers, target}`, checked again when read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PlanFields", into = "PlanFields")]
pub struct RecoveryPlan {
    threshold: Threshold,
    helpers: Vec<u8>,
    target: u8,
    /// `λ_i(target)` for each helper, in `helpers` order.
    lambdas: Vec<u8>,
}

/// The serialized form of a [`RecoveryPlan`].
#[derive(Serialize, Deserialize)]
struct PlanFields {
    k: u8,
    n: u8,
    helpers: Vec<u8>,
    target: u8,
}

impl TryFrom<PlanFields> for RecoveryPlan {
    type Error = Error;
    fn try_from(f: PlanFields) -> Result<Self> {
        let t = Threshold::new(f.k.into(), f.n.into())?;
        RecoveryPlan::new(t, &f.helpers, f.target)
    }
}

impl From<RecoveryPlan> for PlanFields {
    fn from(p: RecoveryPlan) -> Self {
        PlanFields {
            k: p.threshold.k() as u8,
            n: p.threshold.n() as u8,
            helpers: p.helpers,
            target: p.target,
        }
    }
}

fn check_x(x: u8, n: usize) -> Result<()> {
    if x == 0 {
        Err(Error::ZeroX)
    } else if x as usize > n {
        Err(Error::XOutOfRange { x, n })
    } else {
        Ok(())
    }
}

impl RecoveryPlan {
    /// A plan for re-issuing share `target` of a `t` sharing from the shares `helpers`.
    ///
    /// `helpers` (any order) must be exactly `t.k()` distinct x coordinates in `1..=n`, and
    /// `target` one in `1..=n` that is not among them.
    pub fn new(t: Threshold, helpers: &[u8], target: u8) -> Result<Self> {
        let n = t.n();
        check_x(target, n)?;
        let mut sorted = helpers.to_vec();
        sorted.sort_unstable();
        for (i, &x) in sorted.iter().enumerate() {
            check_x(x, n)?;
            if i > 0 && sorted[i - 1] == x {
                return Err(Error::DuplicateX(x));
            }
            if x == target {
                return Err(Error::TargetIsHelper(target));
            }
        }
        if sorted.len() != t.k() {
            return Err(Error::HelperCount {
                expected: t.k(),
                got: sorted.len(),
            });
        }
        let lambdas = sorted
            .iter()
            .map(|&xi| {
                // Π_{m ≠ i} (x_j − x_m) / (x_i − x_m); subtraction is XOR. Neither factor
                // is zero: the x are distinct and the target is not a helper.
                let (mut num, mut den) = (1u8, 1u8);
                for &xm in sorted.iter().filter(|&&xm| xm != xi) {
                    num = gf256::mul(num, target ^ xm);
                    den = gf256::mul(den, xi ^ xm);
                }
                gf256::mul(num, gf256::inv(den))
            })
            .collect();
        Ok(Self {
            threshold: t,
            helpers: sorted,
            target,
            lambdas,
        })
    }

    /// The sharing's threshold.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The helpers' x coordinates, sorted.
    pub fn helpers(&self) -> &[u8] {
        &self.helpers
    }

    /// The x coordinate whose share is re-issued.
    pub fn target(&self) -> u8 {
        self.target
    }

    /// `λ_x(target)`: the Lagrange coefficient of helper `x` over the helpers, at the
    /// target (public). [`Error::NotAHelper`] if `x` is not a helper.
    pub fn lagrange_at_target(&self, helper: u8) -> Result<u8> {
        Ok(self.lambdas[self.position(helper)?])
    }

    fn position(&self, x: u8) -> Result<usize> {
        self.helpers
            .iter()
            .position(|&h| h == x)
            .ok_or(Error::NotAHelper(x))
    }
}

/// Step 1's output: the masked piece `d_{from→to}` helper `from` sends to helper `to`.
/// Zeroized on drop; `Debug` shows only the coordinates and the length.
pub struct Piece {
    /// The helper that made it.
    pub from: u8,
    /// The helper it is for (possibly `from` itself).
    pub to: u8,
    bytes: Zeroizing<Vec<u8>>,
}

/// Step 2's output: helper `from`'s σ, for the plan's target.
/// Zeroized on drop; `Debug` shows only the coordinate and the length.
pub struct Sigma {
    /// The helper that summed it.
    pub from: u8,
    bytes: Zeroizing<Vec<u8>>,
}

impl Piece {
    /// The piece's bytes (to be wrapped to helper `to`).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Sigma {
    /// The σ's bytes (to be wrapped to the target).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piece")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Sigma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sigma")
            .field("from", &self.from)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

fn xor_into(acc: &mut [u8], v: &[u8]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a ^= b;
    }
}

/// Step 1: helper `x`, holding share `y`, makes one masked piece for every helper of the
/// plan, itself included, in the plan's helper order.
///
/// The pieces for the other helpers are fresh randomness from `rng`; the one it keeps
/// carries its Lagrange part. [`Error::NotAHelper`] if `x` is not a helper.
pub fn contribute<R: CryptoRng + ?Sized>(
    plan: &RecoveryPlan,
    x: u8,
    y: &[u8],
    rng: &mut R,
) -> Result<Vec<Piece>> {
    let me = plan.position(x)?;
    let mut own = Zeroizing::new(vec![0u8; y.len()]);
    if !y.is_empty() {
        let lambda = [MulBy::new(plan.lambdas[me])];
        gf256::lincomb(Backend::detect(), &lambda, &[y], &mut own, false);
    }
    let mut pieces = Vec::with_capacity(plan.helpers.len());
    for &to in &plan.helpers {
        if to == x {
            continue;
        }
        let mut d = Zeroizing::new(vec![0u8; y.len()]);
        rng.fill_bytes(&mut d);
        xor_into(&mut own, &d);
        pieces.push(Piece {
            from: x,
            to,
            bytes: d,
        });
    }
    pieces.insert(
        me,
        Piece {
            from: x,
            to: x,
            bytes: own,
        },
    );
    Ok(pieces)
}

/// Checks that `items` hold one contribution `(from, bytes)` from every helper of the
/// plan: none missing, none twice, none from outside the plan, all of one length, which
/// is returned.
fn check_from_every_helper(
    plan: &RecoveryPlan,
    what: &'static str,
    items: &[(u8, &[u8])],
) -> Result<usize> {
    let len = items.first().map_or(0, |(_, b)| b.len());
    let mut seen = vec![false; plan.helpers.len()];
    for &(from, bytes) in items {
        let i = plan.position(from)?;
        if seen[i] {
            return Err(Error::DuplicateContribution { what, from });
        }
        seen[i] = true;
        if bytes.len() != len {
            return Err(Error::LengthMismatch {
                expected: len,
                got: bytes.len(),
            });
        }
    }
    let missing: Vec<u8> = plan
        .helpers
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(&h, _)| h)
        .collect();
    if missing.is_empty() {
        Ok(len)
    } else {
        Err(Error::MissingContributions { what, missing })
    }
}

/// The byte-wise sum (XOR) of one contribution from every helper, checked first.
fn sum_from_every_helper(
    plan: &RecoveryPlan,
    what: &'static str,
    items: &[(u8, &[u8])],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut sum = Zeroizing::new(vec![0u8; check_from_every_helper(plan, what, items)?]);
    for (_, bytes) in items {
        xor_into(&mut sum, bytes);
    }
    Ok(sum)
}

/// Step 2: helper `x` sums the pieces addressed to it, `(from, bytes)`, exactly one from
/// every helper of the plan (its own included), into its σ for the target.
pub fn relay(plan: &RecoveryPlan, x: u8, pieces: &[(u8, &[u8])]) -> Result<Sigma> {
    plan.position(x)?;
    let bytes = sum_from_every_helper(plan, "pieces", pieces)?;
    Ok(Sigma { from: x, bytes })
}

/// Step 3: the target sums the σ of every helper, `(from, bytes)`, into its share
/// (`x = plan.target()`).
pub fn assemble(plan: &RecoveryPlan, sigmas: &[(u8, &[u8])]) -> Result<Share> {
    let mut sum = sum_from_every_helper(plan, "sigmas", sigmas)?;
    Ok(Share {
        x: plan.target,
        y: std::mem::take(&mut *sum),
    })
}

/// All three steps in one process, from the helpers' shares `(x, y)` (one per helper of
/// the plan): for tests, and for a deployment whose helper shares are all in this process
/// anyway (it then gains no secrecy, but no buffer ever holds the secret). Across hosts,
/// each party runs its own step and the pieces and σ travel wrapped to their recipient.
pub fn recover_in_process<R: CryptoRng + ?Sized>(
    plan: &RecoveryPlan,
    shares: &[(u8, &[u8])],
    rng: &mut R,
) -> Result<Share> {
    // The same checks as the later steps, before any randomness is drawn.
    check_from_every_helper(plan, "shares", shares)?;
    let mut all = Vec::with_capacity(shares.len());
    for &(x, y) in shares {
        all.push(contribute(plan, x, y, rng)?);
    }
    let mut sigmas = Vec::with_capacity(plan.helpers.len());
    for (i, &to) in plan.helpers.iter().enumerate() {
        let mine: Vec<(u8, &[u8])> = all.iter().map(|p| (p[i].from, p[i].bytes())).collect();
        debug_assert!(all.iter().all(|p| p[i].to == to));
        sigmas.push(relay(plan, to, &mine)?);
    }
    let refs: Vec<(u8, &[u8])> = sigmas.iter().map(|s| (s.from, s.bytes())).collect();
    assemble(plan, &refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shamir;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn th(k: usize, n: usize) -> Threshold {
        Threshold::new(k, n).unwrap()
    }

    /// A seeded shuffle of `0..n`.
    fn shuffled(n: usize, seed: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            idx.swap(i, (s >> 33) as usize % (i + 1));
        }
        idx
    }

    /// Runs the protocol as separate parties would, returning every piece, σ and the
    /// assembled share.
    fn run(
        plan: &RecoveryPlan,
        shares: &[Share],
        rng: &mut ChaCha20Rng,
    ) -> (Vec<Vec<Piece>>, Vec<Sigma>, Share) {
        let pieces: Vec<Vec<Piece>> = plan
            .helpers()
            .iter()
            .map(|&x| {
                let y = &shares[x as usize - 1].y;
                contribute(plan, x, y, rng).unwrap()
            })
            .collect();
        let sigmas: Vec<Sigma> = plan
            .helpers()
            .iter()
            .map(|&to| {
                // Delivered in a scrambled order: order must not matter.
                let mut mine: Vec<(u8, &[u8])> = pieces
                    .iter()
                    .flatten()
                    .filter(|p| p.to == to)
                    .map(|p| (p.from, p.bytes()))
                    .collect();
                mine.reverse();
                relay(plan, to, &mine).unwrap()
            })
            .collect();
        let refs: Vec<(u8, &[u8])> = sigmas.iter().map(|s| (s.from, s.bytes())).collect();
        let share = assemble(plan, &refs).unwrap();
        (pieces, sigmas, share)
    }

    fn n_and_k() -> impl Strategy<Value = (usize, usize)> {
        // Recovery needs a target outside k helpers, so k < n.
        (3usize..=10).prop_flat_map(|n| (Just(n), 2..n))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The re-issued share is the one `shamir::split` made for the target, and with
        /// any k − 1 other original shares it rebuilds the secret.
        #[test]
        fn recovered_share_is_the_original(
            secret in proptest::collection::vec(any::<u8>(), 0..100),
            (n, k) in n_and_k(),
            seed in any::<u64>(),
        ) {
            let t = th(k, n);
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let shares = shamir::split(t, &secret, &mut rng).unwrap();
            let order = shuffled(n, seed);
            let target = order[0] as u8 + 1;
            let helpers: Vec<u8> = order[1..=k].iter().map(|&i| i as u8 + 1).collect();
            let plan = RecoveryPlan::new(t, &helpers, target).unwrap();
            let (pieces, sigmas, got) = run(&plan, &shares, &mut rng);
            prop_assert_eq!(got.x, target);
            prop_assert_eq!(&got.y, &shares[target as usize - 1].y);
            prop_assert_eq!(pieces.len(), k);
            prop_assert!(pieces.iter().all(|p| p.len() == k));
            prop_assert_eq!(sigmas.len(), k);

            // The in-process runner gives the same share.
            let refs: Vec<(u8, &[u8])> =
                helpers.iter().map(|&x| (x, shares[x as usize - 1].y.as_slice())).collect();
            let local = recover_in_process(&plan, &refs, &mut rng).unwrap();
            prop_assert_eq!(&local, &got);

            // Combined with k − 1 other original shares (chosen by the seed, helpers or
            // not), it rebuilds the secret.
            let mut with = vec![got];
            let others = shuffled(n, seed ^ 0x5eed);
            with.extend(
                others.into_iter().filter(|&i| i as u8 + 1 != target).take(k - 1)
                    .map(|i| shares[i].clone()),
            );
            with.rotate_left(seed as usize % k);
            let back = shamir::combine(t, &with).unwrap();
            prop_assert_eq!(back.as_slice(), secret.as_slice());
        }
    }

    /// `Σ λ_i(x_j) · y_i = f(x_j)` for the λ the plan publishes, and λ matches the
    /// textbook formula computed independently (with division as multiplication by the
    /// inverse).
    #[test]
    fn lagrange_at_target_interpolates() {
        let t = th(3, 6);
        let plan = RecoveryPlan::new(t, &[6, 2, 4], 5).unwrap();
        assert_eq!(plan.helpers(), &[2, 4, 6]);
        let f = |x: u8| gf256::mul(gf256::mul(x, x), 0x53) ^ gf256::mul(x, 0xca) ^ 0x17;
        let mut acc = 0u8;
        for &x in plan.helpers() {
            let l = plan.lagrange_at_target(x).unwrap();
            let others: Vec<u8> = plan.helpers().iter().copied().filter(|&m| m != x).collect();
            let want = gf256::mul(
                gf256::mul(5 ^ others[0], gf256::inv(x ^ others[0])),
                gf256::mul(5 ^ others[1], gf256::inv(x ^ others[1])),
            );
            assert_eq!(l, want);
            acc ^= gf256::mul(l, f(x));
        }
        assert_eq!(acc, f(5));
        assert!(matches!(
            plan.lagrange_at_target(5),
            Err(Error::NotAHelper(5))
        ));
    }

    /// An RNG that replays a fixed byte, to enumerate every mask.
    struct Fixed(u8);
    impl rand_core::TryRng for Fixed {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(u32::from_ne_bytes([self.0; 4]))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from_ne_bytes([self.0; 8]))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(self.0);
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Fixed {}

    /// Perfect secrecy through the real code path, 2-of-3, 1-byte shares, helpers {1, 2},
    /// target 3. For every target share y_3 (16 sharings: 4 secrets × 4 polynomials), over
    /// all 256 masks of the other helper, each σ, and each piece sent to another helper,
    /// takes every byte value exactly once: its distribution is uniform, the same whatever
    /// y_3, and the σ always sum to y_3.
    #[test]
    fn each_sigma_and_piece_is_uniform_whatever_the_share() {
        let t = th(2, 3);
        let plan = RecoveryPlan::new(t, &[1, 2], 3).unwrap();
        let mut targets = std::collections::BTreeSet::new();
        for secret in [0u8, 1, 0x80, 0xff] {
            for coeff in [0u8, 1, 0x35, 0xfe] {
                let shares = shamir::split(t, &[secret], &mut Fixed(coeff)).unwrap();
                let (y1, y2, y3) = (shares[0].y[0], shares[1].y[0], shares[2].y[0]);
                targets.insert(y3);
                for fixed_mask in [0u8, 0x9c] {
                    // seen[0]: σ_1 over helper 2's masks; seen[1]: σ_2 over helper 1's;
                    // seen[2]: d_{2→1} over helper 2's; seen[3]: d_{1→2} over helper 1's.
                    let mut seen = [[0u16; 256]; 4];
                    for m in 0..=255u8 {
                        let (a1, a2) = (fixed_mask, m);
                        for (pass, (m1, m2)) in [(a1, a2), (a2, a1)].into_iter().enumerate() {
                            let p1 = contribute(&plan, 1, &[y1], &mut Fixed(m1)).unwrap();
                            let p2 = contribute(&plan, 2, &[y2], &mut Fixed(m2)).unwrap();
                            assert_eq!((p1[0].to, p1[1].to, p2[1].to), (1, 2, 2));
                            let s1 =
                                relay(&plan, 1, &[(1, p1[0].bytes()), (2, p2[0].bytes())]).unwrap();
                            let s2 =
                                relay(&plan, 2, &[(2, p2[1].bytes()), (1, p1[1].bytes())]).unwrap();
                            let got = assemble(&plan, &[(1, s1.bytes()), (2, s2.bytes())]).unwrap();
                            assert_eq!(got.y, vec![y3]);
                            if pass == 0 {
                                seen[0][s1.bytes()[0] as usize] += 1;
                                seen[2][p2[0].bytes()[0] as usize] += 1;
                            } else {
                                seen[1][s2.bytes()[0] as usize] += 1;
                                seen[3][p1[1].bytes()[0] as usize] += 1;
                            }
                        }
                    }
                    for (which, counts) in seen.iter().enumerate() {
                        assert!(
                            counts.iter().all(|&c| c == 1),
                            "not uniform: {which} for y3 = {y3:#x}"
                        );
                    }
                }
            }
        }
        // The 16 sharings gave several different target shares.
        assert!(targets.len() > 4);
    }

    /// An RNG that replays the given bytes, in order.
    struct Replay(Vec<u8>);
    impl rand_core::TryRng for Replay {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            unreachable!()
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            unreachable!()
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                *b = self.0.remove(0);
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Replay {}

    /// 3-of-4, 1-byte shares, helpers {1, 2, 3}, target 4; helpers 1 and 2 collude. Their
    /// whole view is their shares and coins (fixed here), the pieces helper 3 sends them
    /// and the σ they compute. For several shares y_3 of the honest helper (each giving a
    /// different target share y_4, since λ_3(4) ≠ 0), over all 65,536 coins of helper 3,
    /// the colluders' (σ_1, σ_2) takes every value exactly once: their view says nothing
    /// about y_3 or y_4.
    #[test]
    fn k_minus_one_helpers_together_learn_nothing() {
        let plan = RecoveryPlan::new(th(3, 4), &[1, 2, 3], 4).unwrap();
        assert_ne!(plan.lagrange_at_target(3).unwrap(), 0);
        let (y1, y2) = (0x3c, 0xa7);
        let p1 = contribute(&plan, 1, &[y1], &mut Replay(vec![0x11, 0x22])).unwrap();
        let p2 = contribute(&plan, 2, &[y2], &mut Replay(vec![0x33, 0x44])).unwrap();
        for y3 in [0u8, 1, 0x5a, 0xff] {
            let mut seen = vec![0u8; 1 << 16];
            for coins in 0..=u16::MAX {
                let [a, b] = coins.to_be_bytes();
                let p3 = contribute(&plan, 3, &[y3], &mut Replay(vec![a, b])).unwrap();
                let s1 = relay(
                    &plan,
                    1,
                    &[(1, p1[0].bytes()), (2, p2[0].bytes()), (3, p3[0].bytes())],
                )
                .unwrap();
                let s2 = relay(
                    &plan,
                    2,
                    &[(1, p1[1].bytes()), (2, p2[1].bytes()), (3, p3[1].bytes())],
                )
                .unwrap();
                seen[usize::from(u16::from_be_bytes([s1.bytes()[0], s2.bytes()[0]]))] += 1;
            }
            assert!(seen.iter().all(|&c| c == 1), "y3 = {y3:#x}");
        }
    }

    /// 2-of-3, helpers {1, 2}, target 3: the target's view (σ_1, σ_2) has the same
    /// distribution, over both helpers' coins, for three different sharings with the same
    /// target share — it learns y_3 and nothing about the helpers' shares.
    #[test]
    fn the_target_learns_only_its_share() {
        let t = th(2, 3);
        let plan = RecoveryPlan::new(t, &[1, 2], 3).unwrap();
        let y3 = 0x5a;
        // Sharings (secret, coefficient) whose share at x = 3 is y3: three of the 256.
        let mut sharings = Vec::new();
        'find: for secret in 0..=255u8 {
            for coeff in 0..=255u8 {
                let shares = shamir::split(t, &[secret], &mut Fixed(coeff)).unwrap();
                if shares[2].y[0] == y3 {
                    sharings.push((shares[0].y[0], shares[1].y[0]));
                    if sharings.len() == 3 {
                        break 'find;
                    }
                }
            }
        }
        assert!(sharings[0].0 != sharings[1].0 && sharings[1].0 != sharings[2].0);
        let mut views = Vec::new();
        for (y1, y2) in sharings {
            let mut seen = vec![0u16; 1 << 16];
            for m1 in 0..=255u8 {
                for m2 in 0..=255u8 {
                    let p1 = contribute(&plan, 1, &[y1], &mut Fixed(m1)).unwrap();
                    let p2 = contribute(&plan, 2, &[y2], &mut Fixed(m2)).unwrap();
                    let s1 = relay(&plan, 1, &[(1, p1[0].bytes()), (2, p2[0].bytes())]).unwrap();
                    let s2 = relay(&plan, 2, &[(1, p1[1].bytes()), (2, p2[1].bytes())]).unwrap();
                    assert_eq!(s1.bytes()[0] ^ s2.bytes()[0], y3);
                    seen[usize::from(u16::from_be_bytes([s1.bytes()[0], s2.bytes()[0]]))] += 1;
                }
            }
            views.push(seen);
        }
        assert!(views[0] == views[1] && views[1] == views[2]);
        // Uniform over the 256 pairs that sum to y3.
        assert_eq!(views[0].iter().filter(|&&c| c == 256).count(), 256);
    }

    /// With a real RNG, the same inputs give fresh pieces and σ every run (never the
    /// share or the Lagrange part in the clear), and the same share.
    #[test]
    fn pieces_and_sigmas_are_fresh_every_run() {
        let t = th(3, 5);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let shares = shamir::split(t, &[0x42; 32], &mut rng).unwrap();
        let plan = RecoveryPlan::new(t, &[1, 3, 5], 2).unwrap();
        let target = shares[1].y.clone();
        let mut sigma_sets = std::collections::BTreeSet::new();
        for seed in 0..8u64 {
            let (pieces, sigmas, got) = run(&plan, &shares, &mut ChaCha20Rng::seed_from_u64(seed));
            assert_eq!(got.y, target);
            for s in &sigmas {
                assert_ne!(s.bytes(), target.as_slice());
                assert!(sigma_sets.insert(s.bytes().to_vec()), "a σ repeated");
            }
            for (i, row) in pieces.iter().enumerate() {
                let x = plan.helpers()[i];
                let y = &shares[x as usize - 1].y;
                let lambda = MulBy::new(plan.lagrange_at_target(x).unwrap());
                let mut part = vec![0u8; 32];
                gf256::lincomb(Backend::Portable, &[lambda], &[y], &mut part, false);
                for p in row {
                    assert_ne!(p.bytes(), part.as_slice());
                    assert_ne!(p.bytes(), y.as_slice());
                    assert_ne!(p.bytes(), target.as_slice());
                }
            }
        }
        // Nothing secret in Debug.
        let (pieces, sigmas, _) = run(&plan, &shares, &mut rng);
        let shown = format!("{:?} {:?}", pieces[0][1], sigmas[0]);
        assert_eq!(
            shown,
            "Piece { from: 1, to: 3, len: 32, .. } Sigma { from: 1, len: 32, .. }"
        );
    }

    #[test]
    fn bad_plans_are_refused() {
        let t = th(3, 5);
        assert!(matches!(
            RecoveryPlan::new(t, &[1, 2], 4),
            Err(Error::HelperCount {
                expected: 3,
                got: 2
            })
        ));
        assert!(matches!(
            RecoveryPlan::new(t, &[1, 2, 3, 5], 4),
            Err(Error::HelperCount {
                expected: 3,
                got: 4
            })
        ));
        assert!(matches!(
            RecoveryPlan::new(t, &[1, 3, 3], 4),
            Err(Error::DuplicateX(3))
        ));
        assert!(matches!(
            RecoveryPlan::new(t, &[1, 2, 3], 3),
            Err(Error::TargetIsHelper(3))
        ));
        assert!(matches!(
            RecoveryPlan::new(t, &[0, 2, 3], 4),
            Err(Error::ZeroX)
        ));
        assert!(matches!(
            RecoveryPlan::new(t, &[1, 2, 3], 0),
            Err(Error::ZeroX)
        ));
        assert!(matches!(
            RecoveryPlan::new(t, &[1, 2, 6], 4),
            Err(Error::XOutOfRange { x: 6, n: 5 })
        ));
        assert!(matches!(
            RecoveryPlan::new(t, &[1, 2, 3], 6),
            Err(Error::XOutOfRange { x: 6, n: 5 })
        ));
        // k = n: no target outside k helpers exists.
        assert!(RecoveryPlan::new(th(3, 3), &[1, 2], 3).is_err());
        assert!(matches!(
            RecoveryPlan::new(th(3, 3), &[1, 2, 3], 3),
            Err(Error::TargetIsHelper(3))
        ));
        assert_eq!(
            Error::TargetIsHelper(3).to_string(),
            "the recovery target x = 3 is also one of the helpers"
        );

        // The serialized form is checked again when read.
        let plan = RecoveryPlan::new(t, &[5, 1, 3], 2).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(json, r#"{"k":3,"n":5,"helpers":[1,3,5],"target":2}"#);
        assert_eq!(serde_json::from_str::<RecoveryPlan>(&json).unwrap(), plan);
        for bad in [
            r#"{"k":3,"n":5,"helpers":[1,3,5],"target":3}"#,
            r#"{"k":3,"n":5,"helpers":[1,3],"target":2}"#,
            r#"{"k":1,"n":5,"helpers":[1],"target":2}"#,
        ] {
            assert!(serde_json::from_str::<RecoveryPlan>(bad).is_err(), "{bad}");
        }
    }

    /// `(from, bytes)` contributions, as received.
    type Contributions<'a> = Vec<(u8, &'a [u8])>;

    #[test]
    fn bad_contributions_are_refused() {
        let t = th(3, 5);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let plan = RecoveryPlan::new(t, &[1, 2, 3], 5).unwrap();
        let y = [7u8; 32];
        assert!(matches!(
            contribute(&plan, 4, &y, &mut rng),
            Err(Error::NotAHelper(4))
        ));
        assert!(matches!(
            contribute(&plan, 5, &y, &mut rng),
            Err(Error::NotAHelper(5))
        ));
        let (a, b, short): (&[u8], &[u8], &[u8]) = (&[1; 32], &[2; 32], &[3; 31]);
        let cases: Vec<(Contributions, &str)> = vec![
            (
                vec![(1, a), (2, b)],
                "missing pieces from helper(s) x = [3]",
            ),
            (vec![], "missing pieces from helper(s) x = [1, 2, 3]"),
            (vec![(1, a), (2, b), (2, b)], "two pieces from helper x = 2"),
            (
                vec![(1, a), (4, b), (3, b)],
                "x = 4 is not a helper in the recovery plan",
            ),
            (
                vec![(1, a), (2, short), (3, b)],
                "length mismatch: expected 32 bytes, got 31",
            ),
        ];
        for (pieces, want) in &cases {
            assert_eq!(relay(&plan, 1, pieces).unwrap_err().to_string(), *want);
            let sigma_msg = want.replace("pieces", "sigmas");
            assert_eq!(assemble(&plan, pieces).unwrap_err().to_string(), sigma_msg);
        }
        // A relay at a non-helper (the target itself, say) is refused.
        assert!(matches!(
            relay(&plan, 5, &[(1, a), (2, b), (3, b)]),
            Err(Error::NotAHelper(5))
        ));
        // The in-process runner checks the shares first.
        assert!(matches!(
            recover_in_process(&plan, &[(1, a), (2, b)], &mut rng),
            Err(Error::MissingContributions { missing, .. }) if missing == vec![3]
        ));
        // Empty shares (an empty secret) are fine and give an empty share.
        let e: &[u8] = &[];
        let got = recover_in_process(&plan, &[(1, e), (2, e), (3, e)], &mut rng).unwrap();
        assert_eq!((got.x, got.y.len()), (5, 0));
    }
}
