//! Keystore v3: the published Web3 Secret Storage vectors, round trips, tampering, hostile files, and interoperability with `eth-keystore`.

use alloy::primitives::{Address, hex};
use alloy::signers::local::PrivateKeySigner;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::Error;
use crate::keystore::*;

/// Cheap enough that every test can pay it.
const CHEAP: ScryptParams = ScryptParams {
    log_n: 10,
    r: 8,
    p: 1,
};

const VECTOR_KEY: &str = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";
const VECTOR_ADDRESS: &str = "0x008aeeda4d805471df9b2a5b0f38a0c3bcba786b";

/// Web3 Secret Storage Definition, "Test Vectors", scrypt (password "testpassword").
const SCRYPT_VECTOR: &str = r#"{
    "crypto" : {
        "cipher" : "aes-128-ctr",
        "cipherparams" : { "iv" : "83dbcc02d8ccb40e466191a123791e0e" },
        "ciphertext" : "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf" : "scrypt",
        "kdfparams" : {
            "dklen" : 32,
            "n" : 262144,
            "r" : 1,
            "p" : 8,
            "salt" : "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19"
        },
        "mac" : "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"
    },
    "id" : "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version" : 3
}"#;

/// Same definition, PBKDF2-SHA-256 vector (same password and key).
const PBKDF2_VECTOR: &str = r#"{
    "crypto" : {
        "cipher" : "aes-128-ctr",
        "cipherparams" : { "iv" : "6087dab2f9fdbbfaddc31a909735c1e6" },
        "ciphertext" : "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf" : "pbkdf2",
        "kdfparams" : {
            "c" : 262144,
            "dklen" : 32,
            "prf" : "hmac-sha256",
            "salt" : "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"
        },
        "mac" : "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"
    },
    "id" : "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version" : 3
}"#;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(7)
}

/// The rand 0.8-era RNG eth-keystore's own API takes (interoperability test only).
fn rng03() -> rand_chacha03::ChaCha20Rng {
    <rand_chacha03::ChaCha20Rng as rand_core06::SeedableRng>::seed_from_u64(7)
}

#[test]
fn decrypts_the_published_scrypt_vector() {
    // The one test that pays n = 2^18 (32 MiB with r = 1, p = 8).
    let file = KeystoreFile::from_json(SCRYPT_VECTOR).unwrap();
    let signer = decrypt(&file, b"testpassword").unwrap();
    assert_eq!(hex::encode(signer.credential().to_bytes()), VECTOR_KEY);
    assert_eq!(signer.address(), VECTOR_ADDRESS.parse::<Address>().unwrap());
}

#[test]
fn decrypts_the_published_pbkdf2_vector() {
    let file = KeystoreFile::from_json(PBKDF2_VECTOR).unwrap();
    let signer = decrypt(&file, b"testpassword").unwrap();
    assert_eq!(hex::encode(signer.credential().to_bytes()), VECTOR_KEY);
}

#[test]
fn wrong_password_is_a_mac_error_that_reveals_nothing() {
    // A cheap KDF; the MAC check fails before anything is decrypted.
    let (_, file) = generate(b"right horse battery", CHEAP, &mut rng()).unwrap();
    let err = decrypt(&file, b"wrong horse battery").unwrap_err();
    assert!(matches!(err, Error::KeystoreMac));
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains("horse"), "{msg}");
    assert_eq!(err.to_string(), "wrong password or damaged keystore");
}

#[test]
fn round_trip_through_json() {
    let mut rng = rng();
    let (signer, file) = generate(b"pass phrase", CHEAP, &mut rng).unwrap();
    let json = file.to_json();
    let back = KeystoreFile::from_json(&json).unwrap();
    assert_eq!(back, file);
    assert_eq!(back.address(), Some(signer.address()));
    let opened = decrypt(&back, b"pass phrase").unwrap();
    assert_eq!(
        opened.credential().to_bytes(),
        signer.credential().to_bytes()
    );

    // The file is shaped as geth writes it.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], 3);
    assert_eq!(v["crypto"]["cipher"], "aes-128-ctr");
    assert_eq!(v["crypto"]["kdf"], "scrypt");
    assert_eq!(v["crypto"]["kdfparams"]["n"], 1024);
    assert_eq!(v["crypto"]["kdfparams"]["dklen"], 32);
    let id = v["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "UUID version 4");
    assert!(!json.contains(&hex::encode(signer.credential().to_bytes())));
}

#[test]
fn encrypting_a_given_key_is_fresh_each_time() {
    let signer = PrivateKeySigner::from_slice(&hex::decode(VECTOR_KEY).unwrap()).unwrap();
    let mut rng = rng();
    let a = encrypt(&signer, b"pw", CHEAP, &mut rng).unwrap();
    let b = encrypt(&signer, b"pw", CHEAP, &mut rng).unwrap();
    assert_ne!(a.crypto.ciphertext, b.crypto.ciphertext);
    assert_ne!(a.id, b.id);
    assert_eq!(decrypt(&b, b"pw").unwrap().address(), signer.address());
}

#[test]
fn capitalised_crypto_key_is_accepted() {
    let (signer, file) = generate(b"pw", CHEAP, &mut rng()).unwrap();
    let json = file.to_json().replace("\"crypto\"", "\"Crypto\"");
    let back = KeystoreFile::from_json(&json).unwrap();
    assert_eq!(decrypt(&back, b"pw").unwrap().address(), signer.address());
}

#[test]
fn tampering_is_detected() {
    let (_, file) = generate(b"pw", CHEAP, &mut rng()).unwrap();

    let mut t = file.clone();
    let mut ct = hex::decode(&t.crypto.ciphertext).unwrap();
    ct[0] ^= 1;
    t.crypto.ciphertext = hex::encode(ct);
    assert!(matches!(decrypt(&t, b"pw"), Err(Error::KeystoreMac)));

    let mut t = file.clone();
    t.crypto.kdfparams["salt"] = serde_json::json!("00".repeat(32));
    assert!(matches!(decrypt(&t, b"pw"), Err(Error::KeystoreMac)));

    // A file claiming someone else's address.
    let mut t = file.clone();
    t.address = Some("11".repeat(20));
    assert!(matches!(decrypt(&t, b"pw"), Err(Error::KeystoreFormat(_))));
}

#[test]
fn unsupported_or_hostile_files_are_refused() {
    let (_, file) = generate(b"pw", CHEAP, &mut rng()).unwrap();
    let refused = |f: &KeystoreFile| matches!(decrypt(f, b"pw"), Err(Error::KeystoreFormat(_)));

    let mut t = file.clone();
    t.version = 1;
    assert!(refused(&t));
    let mut t = file.clone();
    t.crypto.cipher = "aes-128-cbc".into();
    assert!(refused(&t));
    let mut t = file.clone();
    t.crypto.kdf = "argon2".into();
    assert!(refused(&t));
    let mut t = file.clone();
    t.crypto.cipherparams.iv = "zz".into();
    assert!(refused(&t));
    let mut t = file.clone();
    t.crypto.ciphertext.push_str("00");
    assert!(refused(&t));
    // A cost that would take gigabytes is refused before any work is done.
    let mut t = file.clone();
    t.crypto.kdfparams["n"] = serde_json::json!(1u64 << 22);
    assert!(refused(&t));
    let mut t = file.clone();
    t.crypto.kdfparams["n"] = serde_json::json!(1000);
    assert!(refused(&t));
    let mut t = file.clone();
    t.crypto.kdfparams["dklen"] = serde_json::json!(16);
    assert!(refused(&t));

    assert!(matches!(
        KeystoreFile::from_json("{}"),
        Err(Error::KeystoreFormat(_))
    ));
}

#[test]
fn params_are_checked() {
    let too_big = ScryptParams {
        log_n: 21,
        r: 8,
        p: 1,
    };
    assert!(matches!(
        generate(b"pw", too_big, &mut rng()),
        Err(Error::InvalidParams(_))
    ));
    // The presets are within the accepted range (checked, not run: STANDARD is slow).
    assert!(ScryptParams::STANDARD.to_scrypt().is_ok());
    assert!(ScryptParams::LIGHT.to_scrypt().is_ok());
}

#[test]
fn debug_shows_no_key_material() {
    let (_, file) = generate(b"pw", CHEAP, &mut rng()).unwrap();
    let dbg = format!("{file:?}");
    assert!(!dbg.contains(&file.crypto.ciphertext) && !dbg.contains(&file.crypto.mac));
}

#[test]
fn interoperates_with_eth_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rng();

    // Ours → eth-keystore (what alloy and foundry read).
    let (signer, file) = generate(b"pw", CHEAP, &mut rng).unwrap();
    let path = dir.path().join("ours.json");
    std::fs::write(&path, file.to_json()).unwrap();
    let theirs = PrivateKeySigner::decrypt_keystore(&path, "pw").unwrap();
    assert_eq!(theirs.address(), signer.address());

    // eth-keystore → ours.
    let key = hex::decode(VECTOR_KEY).unwrap();
    let (written, _) = PrivateKeySigner::encrypt_keystore(
        dir.path(),
        &mut rng03(),
        &key,
        "pw",
        Some("theirs.json"),
    )
    .unwrap();
    let json = std::fs::read_to_string(dir.path().join("theirs.json")).unwrap();
    let ours = decrypt(&KeystoreFile::from_json(&json).unwrap(), b"pw").unwrap();
    assert_eq!(ours.address(), written.address());
}

#[test]
#[ignore = "runs the standard cost (256 MiB, about a second): cargo test -- --ignored"]
fn standard_cost_round_trip() {
    let (signer, file) = generate(b"pw", ScryptParams::STANDARD, &mut rng()).unwrap();
    assert_eq!(file.crypto.kdfparams["n"], 262_144);
    assert_eq!(decrypt(&file, b"pw").unwrap().address(), signer.address());
}
