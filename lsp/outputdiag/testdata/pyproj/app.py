from pkg import config


def main():
    print(config.load("{broken"))


if __name__ == "__main__":
    main()
